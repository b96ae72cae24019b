"""The walls of the house, from the source: the imports between stylelab's modules form no cycle, nothing but
the console scripts imports stylelab.cli, only the config layer and cli/ know Hydra, no stylelab import is
hidden in a function, and no file is longer than 400 lines."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "stylelab"
# the modules that turn a config into plain arguments (the schema, composing, building, the API) and cli/
KNOWS_CONFIGS = {"stylelab.config", "stylelab.overrides", "stylelab.build", "stylelab.api"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "configs" in path.relative_to(PACKAGE).parts:
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, top_level: bool) -> list[tuple[str, int]]:
    """(module imported, line) for the module-level imports, or for the imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(sub) for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and (id(node) in inside) != top_level:
            if isinstance(node, ast.Import):
                found += [(alias.name, node.lineno) for alias in node.names]
            elif node.module:
                found.append((node.module, node.lineno))
                found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def graph() -> dict[str, set[str]]:
    names = modules()
    edges = {}
    for name, path in names.items():
        edges[name] = {
            imported for imported, _ in _imports(path, top_level=True) if imported in names and imported != name
        }
    return edges


def test_the_imports_form_no_cycle():
    edges, state, path = graph(), {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert len(edges) > 30  # the walk saw the package


def test_nothing_outside_the_command_line_imports_it_and_only_the_config_layer_knows_hydra():
    for name, path in modules().items():
        imported = [module for module, _ in _imports(path, top_level=True) + _imports(path, top_level=False)]
        if name.startswith("stylelab.cli"):
            continue
        assert not [m for m in imported if m.startswith("stylelab.cli")], f"{name} imports the command line"
        if name not in KNOWS_CONFIGS:
            assert not [m for m in imported if m.split(".")[0] in ("hydra", "omegaconf")], f"{name} imports Hydra"


def test_no_stylelab_import_is_hidden_in_a_function():
    """The two exceptions: `stylelab`'s entry point takes the signals over before it imports the app, and the
    app imports its job (torch) only once Hydra runs one, so that --help and --cfg job start without torch."""
    hidden = [
        (name, module)
        for name, path in modules().items()
        for module, _ in _imports(path, top_level=False)
        if module.startswith("stylelab")
    ]
    assert hidden == [
        ("stylelab.cli", "stylelab.cli"),
        ("stylelab.cli", "stylelab.cli.app"),
        ("stylelab.cli.app", "stylelab.cli"),
        ("stylelab.cli.app", "stylelab.cli.job"),
    ]


def test_torchvision_is_imported_where_its_layers_or_weights_are_used_not_with_stylelab():
    # importing torchvision costs a second or more (it loads torch._dynamo); --help and composing need none
    code = (
        "import sys, stylelab.cli.app, stylelab.api, stylelab.loop, stylelab.build; print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_no_private_hydra_and_no_file_over_400_lines():
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        assert "hydra._internal" not in text, name
        assert len(text.splitlines()) <= 400, f"{path.relative_to(REPO)} has {len(text.splitlines())} lines"


def test_the_command_line_and_composing_a_config_import_no_torch():
    # torch takes seconds to import; --help, --cfg job and a mistake on the command line answer without it
    code = (
        "import sys, stylelab.cli.app; from stylelab.overrides import compose; from stylelab.cli import help; "
        "compose('optimizer=adam', 'loss/style=sliced_w2', 'colour=match'); help.render([]); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr

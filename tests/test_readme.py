"""Every `stylelab` command line in the READMEs composes: users copy them into their scripts."""

import itertools
import re
import shlex

import pytest
from conftest import REPO
from hydra.core.override_parser.overrides_parser import OverridesParser

from stylelab import api
from stylelab.cli.argv import quote_path

READMES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),  # the pages the README links: their commands run too
    REPO / "experiments" / "gatys2016" / "README.md",
    REPO / "experiments" / "gatys2017" / "README.md",
    REPO / "experiments" / "ruder2016" / "README.md",
]
# what a command needs that compose does not: files of the user's own (tested in tests/cli/test_plugins.py)
NEEDS_USER_FILES = ("--config-dir", "hydra.searchpath")


def commands() -> list[str]:
    """The `stylelab ...` lines of the READMEs' bash blocks, continuation lines joined, comments cut."""
    found = []
    for readme in READMES:
        if not readme.is_file():
            continue
        for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                line = re.sub(r"^\.venv/bin/", "", line)
                if line.startswith("stylelab ") or line == "stylelab":
                    found.append(line)
    return found


def jobs(args: list[str]) -> list[list[str]]:
    """The overrides of every job a command runs (a sweep's combinations; one job otherwise)."""
    parsed = OverridesParser.create().parse_overrides(args)
    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [f"{o.get_key_element()}={o.get_value_element_as_str()}"]
        for o in parsed
    ]
    return [list(combo) for combo in itertools.product(*choices)]


@pytest.mark.slow
@pytest.mark.parametrize("line", commands())
def test_readme_command_composes(line):
    args = shlex.split(re.sub(r"<[^>]*>", "x", line))[1:]  # placeholders stand for the user's own values
    if any(a.startswith(NEEDS_USER_FILES) for a in args) or args in (["--help"], ["--hydra-help"]):
        pytest.skip("needs the user's own files, or is not a run")
    args = [quote_path(a) for a in args if a != "-m"]  # as the command line does
    for overrides in jobs(args):
        api.compose_with_choices(*overrides)  # compose does not read the files


def test_the_readme_has_commands():
    assert len(commands()) > 30

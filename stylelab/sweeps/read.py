"""A sweep folder -> its jobs: what Hydra left in each job folder, read with PyYAML (no Hydra here).

Hydra leaves in every job folder `.hydra/overrides.yaml` (what was set on the command line or swept),
`.hydra/config.yaml` (the composed config) and `.hydra/hydra.yaml` (job number, working directory), and
the run adds `final.png`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from stylelab.errors import StyleLabError


@dataclass
class Job:
    """One job folder of a sweep."""

    dir: Path
    num: int  # Hydra's job number: the order in which the sweep ran
    overrides: dict[str, str]  # {"loss.beta": "1000.0", "experiment": "gatys2016/fig4"}, as Hydra recorded them
    config: dict  # the composed config, plain YAML data (interpolations like ${inputs.x} unresolved)
    final: Path | None  # final.png, None while the job has not finished
    cwd: Path | None  # the folder it ran from: relative image paths are relative to it

    def value(self, key: str):
        """A dotted config key, following whole-value references like `style: ${inputs.picasso}`."""
        node = self.config
        for _ in range(10):  # a reference chain longer than this is a loop
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if not (isinstance(node, str) and node.startswith("${") and node.endswith("}")):
                return node
            key, node = node[2:-1], self.config
        raise StyleLabError(f"the config of {self.dir} refers in a loop at '{key}'")


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StyleLabError(f"cannot read '{path}': {exc}") from None


def _job(folder: Path) -> Job:
    hydra_dir = folder / ".hydra"
    overrides = {}
    for item in _read_yaml(hydra_dir / "overrides.yaml") or []:
        key, _, value = str(item).partition("=")
        overrides[key.lstrip("+")] = value
    config = _read_yaml(hydra_dir / "config.yaml") if (hydra_dir / "config.yaml").is_file() else {}
    runtime = {}
    if (hydra_dir / "hydra.yaml").is_file():
        runtime = (_read_yaml(hydra_dir / "hydra.yaml") or {}).get("hydra", {})
    num = runtime.get("job", {}).get("num")
    cwd = runtime.get("runtime", {}).get("cwd")
    final = folder / "final.png"
    return Job(
        dir=folder,
        num=num if isinstance(num, int) else 0,
        overrides=overrides,
        config=config or {},
        final=final if final.is_file() else None,
        cwd=Path(cwd) if cwd else None,
    )


def load_sweep(path: str | Path) -> list[Job]:
    """The jobs of a sweep folder (or the single job of a run folder), in the order the sweep ran them."""
    path = Path(path)
    if not path.is_dir():
        raise StyleLabError(f"'{path}' is not a folder; give the sweep folder that `stylelab -m` printed")
    if (path / ".hydra" / "overrides.yaml").is_file():
        return [_job(path)]
    jobs = [_job(p.parent.parent) for p in sorted(path.glob("*/.hydra/overrides.yaml"))]
    if not jobs:
        raise StyleLabError(f"'{path}' holds no stylelab jobs (sub-folders with .hydra/overrides.yaml)")
    return sorted(jobs, key=lambda job: (job.num, job.dir.name))


def swept_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values differ between jobs, in the order the first job lists them."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    return [key for key in keys if len({job.overrides.get(key) for job in jobs}) > 1]

"""A sweep folder -> its jobs: what Hydra left in each job folder, read with PyYAML (no Hydra here).

Hydra leaves in every job folder `.hydra/overrides.yaml` (what was set on the command line or swept),
`.hydra/config.yaml` (the composed config) and `.hydra/hydra.yaml` (job number, working directory), and
the run adds `final.png`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from stylelab.errors import StyleLabError
from stylelab.io.atomic import write_atomic
from stylelab.io.folders import events_dir

# A job that failed writes why into this file of its folder: the reason on the first line (a traceback
# below it for an unexpected error). A later successful run of the job removes it.
ERROR_FILE = "error.txt"
# summary/<name> of each run, written at its end: total (the weighted sum), then each term of the objective
# before its weight (content, style, tv, or whatever terms it had), and the time per step
_TIMING = "seconds_per_step"


@dataclass
class Job:
    """One job folder of a sweep."""

    dir: Path
    num: int  # Hydra's job number: the order in which the sweep ran
    overrides: dict[str, str]  # {"loss.beta": "1000.0", "experiment": "gatys2016/fig4"}, as Hydra recorded them
    config: dict  # the composed config, plain YAML data (interpolations like ${inputs.x} unresolved)
    final: Path | None  # final.png, None while the job has not finished
    cwd: Path | None  # the folder it ran from: relative image paths are relative to it
    typed: dict[str, str] = field(
        default_factory=dict
    )  # the swept values as the user typed them ({"loss.beta": "1e3"})

    def shown(self, key: str) -> str | None:
        """An override's value as the user typed it where the sweep's plan knows it, else as Hydra recorded it."""
        return self.typed.get(key, self.overrides.get(key))

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


def _overrides(items) -> dict[str, str]:
    """["key=value", "+key=value", ...] -> {key: value}."""
    pairs = (str(item).partition("=") for item in items)
    return {key.lstrip("+"): value for key, _, value in pairs}


def _job(folder: Path) -> Job:
    hydra_dir = folder / ".hydra"
    overrides = _overrides(_read_yaml(hydra_dir / "overrides.yaml") or [])
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


def write_record(folder: Path, config_text: str, overrides: list[str], choices: dict[str, str], num: int = 0) -> None:
    """The .hydra/ record Hydra writes into a job's folder (config, overrides, job number, working directory,
    the options chosen), for a run that Hydra did not start: the Python API's, or a sweep's job that never
    started and is resumed."""
    record = Path(folder) / ".hydra"
    files = {
        "config.yaml": config_text,
        "overrides.yaml": yaml.safe_dump(list(overrides), allow_unicode=True),
        "hydra.yaml": yaml.safe_dump(
            {"hydra": {"job": {"num": num}, "runtime": {"cwd": str(Path.cwd()), "choices": dict(choices)}}},
            allow_unicode=True,
        ),
    }
    for name, text in files.items():
        write_atomic(record / name, lambda f, text=text: f.write(text.encode("utf-8")))


@dataclass
class PlannedJob:
    """A job as its sweep planned it, also before it starts (stylelab.cli.sweep reads the plan from multirun.yaml)."""

    num: int  # Hydra's job number: the order in which the sweep runs it
    overrides: list[str]  # as Hydra records them in the job's .hydra/overrides.yaml ("loss.beta=1000.0")
    swept: dict[str, str]  # the keys that vary across the sweep, with the values as typed ({"loss.beta": "1e3"})
    name: str  # its folder's name in the sweep folder
    folder: Path  # where it runs: <sweep>/<name>, or the folder it resumes


def load_sweep(path: str | Path, planned: list[PlannedJob] | None = None) -> list[Job]:
    """The jobs of a sweep folder (or the single job of a run folder), in the order the sweep ran them.

    With `planned`, every planned job is listed, also one that never started (it has no folder yet).
    """
    path = Path(path)
    if not path.is_dir():
        raise StyleLabError(f"'{path}' is not a folder; give the sweep folder that `stylelab -m` printed")
    if (path / ".hydra" / "overrides.yaml").is_file():
        return [_job(path)]  # one run's folder
    found = {p.parent.parent.resolve(): _job(p.parent.parent) for p in sorted(path.glob("*/.hydra/overrides.yaml"))}
    jobs = []
    for plan in planned or []:
        folder = plan.folder.resolve()
        typed = {key.lstrip("+~"): value for key, value in plan.swept.items()}
        if folder in found:
            jobs.append(found.pop(folder))
            jobs[-1].typed = typed
        else:  # not started yet: what the plan says about it
            jobs.append(
                Job(
                    dir=plan.folder,
                    num=plan.num,
                    overrides=_overrides(plan.overrides),
                    config={},
                    final=None,
                    cwd=None,
                    typed=typed,
                )
            )
    jobs += found.values()  # folders the plan does not know (an older sweep into the same folder)
    if not jobs:
        raise StyleLabError(f"'{path}' holds no stylelab jobs (sub-folders with .hydra/overrides.yaml)")
    return sorted(jobs, key=lambda job: (job.num, job.dir.name))


def swept_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values differ between jobs, in the order the first job lists them."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    return [key for key in keys if len({job.overrides.get(key) for job in jobs}) > 1]


# ---------------------------------------------------------------- how a job ended


@dataclass
class Ending:
    """How a job's run ended, from its folder: its error file or its TensorBoard events."""

    status: str  # done | stopped | failed | running or killed | not started
    reason: str = ""  # failed: the error's first line
    steps_asked: int | None = None
    steps_done: int | None = None
    seconds: float | None = None
    losses: dict[str, float] = field(default_factory=dict)  # summary/<name>: total and each term


def ending(folder: Path, steps_asked: int | None = None) -> Ending:
    """What a job folder says about the end of its run (steps_asked: the config's, if known)."""
    folder = Path(folder)
    if not folder.is_dir():
        return Ending("not started", steps_asked=steps_asked)
    error = folder / ERROR_FILE
    if error.is_file():
        lines = error.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return Ending("failed", lines[0] if lines else "unknown error", steps_asked=steps_asked)
    found = Ending("running or killed", steps_asked=steps_asked)
    events = events_dir(folder)
    if not list(events.glob("events.out.tfevents.*")):
        return found
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "tensors": 1, "images": 1})
    tb_logger = logging.getLogger("tensorboard")
    level = tb_logger.level
    tb_logger.setLevel(logging.ERROR)  # a resumed run's purge_step is logged as a warning; it is expected here
    try:
        acc.Reload()
    finally:
        tb_logger.setLevel(level)
    scalars = acc.Tags().get("scalars", [])
    if "summary/total" not in scalars:
        return found
    last = acc.Scalars("summary/total")[-1]
    found.steps_done = last.step
    names = [tag.removeprefix("summary/") for tag in scalars if tag.startswith("summary/")]
    found.losses = {name: acc.Scalars(f"summary/{name}")[-1].value for name in names if name != _TIMING}
    if f"summary/{_TIMING}" in scalars:
        found.seconds = acc.Scalars(f"summary/{_TIMING}")[-1].value * max(last.step, 1)
    asked = _hparam(acc, "steps")  # a resumed run may have asked for more steps than its config says
    found.steps_asked = int(float(asked)) if asked is not None else steps_asked  # a swept value is as typed
    stopped = found.steps_asked is not None and found.steps_done < found.steps_asked
    # stopped: by a signal or a tolerance; its checkpoint.pt may resume it
    found.status, found.reason = ("stopped", f"at step {found.steps_done}") if stopped else ("done", "")
    return found


def _hparam(acc, name: str):
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        content = acc.PluginTagToContent("hparams").get("_hparams_/session_start_info")
    except KeyError:  # no hparams written (yet)
        return None
    if not content:
        return None
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    value = info.hparams.get(name)
    return None if value is None else (value.number_value if value.HasField("number_value") else value.string_value)

"""A sweep as Hydra runs it: its jobs from multirun.yaml, their folder names, and the report at its end.

A sweep of Hydra's basic sweeper is every combination of the swept keys' values (`hydra.sweeper.params` and
the command line). `plan` lists those combinations from the multirun.yaml Hydra writes before the first
job starts, so the summary of a sweep, a resumed sweep and the report at its end know every job, also
those that failed or never started. Nothing here depends on the order in which the launcher runs them: a
job finds its own entry by its overrides. A job's folder is named after the keys that vary across the
sweep, with their values as the user typed them: `loss.beta=1e3,loss.style_layers=[relu1_1]`.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from stylelab import config
from stylelab.signals import STOP, exit_code
from stylelab.sweeps import read
from stylelab.sweeps.read import PlannedJob

MULTIRUN_FILE = "multirun.yaml"
_MAX_NAME = 200  # bytes; most file systems allow 255


def split_top_level(text: str) -> list[str]:
    """'1e3,[relu1_1,relu2_1],'a,b'' -> ['1e3', '[relu1_1,relu2_1]', "'a,b'"]: commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _typed_values(override: Override) -> dict[str, str]:
    """A swept override's values as Hydra writes them for a job -> as the user typed them."""
    key = override.get_key_element()
    value_text = override.input_line.partition("=")[2]
    if not override.is_discrete_sweep() or value_text.startswith(("choice(", "range(", "glob(", "shuffle(")):
        return {}  # functions sweeps: Hydra's own spelling of the values
    parser = OverridesParser.create()
    typed = {}
    for element in split_top_level(value_text):
        try:
            normal = parser.parse_override(f"{key}={element}").get_value_element_as_str()
        except Exception:  # an element Hydra would not parse alone: keep Hydra's spelling
            continue
        typed.setdefault(normal, element.strip())
    return typed


def _display(key: str, value: str) -> str:
    """One `key=value` of a folder name: short keys for nested experiment groups, no path separators."""
    key = key.lstrip("+~")
    key = key.rsplit("/", 1)[-1] if key.startswith("experiment/") else key.replace("/", "-")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]

    def short(item: str) -> str:  # an image path: its file name
        item = item.strip().strip("'\"")
        return re.split(r"[/\\]", item.rstrip("/\\"))[-1] if re.search(r"[/\\]", item) else item

    if value.startswith("[") and value.endswith("]"):
        value = "[" + ",".join(short(v) for v in split_top_level(value[1:-1])) + "]"
    else:
        value = short(value)
    return f"{key}={value}".replace("/", "_")


def _name(swept: dict[str, str], num: int) -> str:
    name = ",".join(_display(k, v) for k, v in swept.items()) or str(num)
    if len(name.encode()) > _MAX_NAME:
        name = name.encode()[: _MAX_NAME - 12].decode(errors="ignore") + f"..{num}"
    return name


def plan(multirun: DictConfig, sweep_dir: str | Path) -> list[PlannedJob] | None:
    """The jobs of the sweep in `sweep_dir` from its multirun.yaml (None if not run by Hydra's basic sweeper)."""
    hydra = multirun.get("hydra", {})
    if "BasicSweeper" not in str(hydra.get("sweeper", {}).get("_target_", "BasicSweeper")):
        return None
    params = hydra.get("sweeper", {}).get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()] + list(hydra.get("overrides", {}).get("task", []))
    parsed = OverridesParser.create().parse_overrides(lines)
    values, typed = {}, {}  # per key, in the sweeper's order: a key given twice keeps its first place, last value
    for override in parsed:
        key = override.get_key_element()
        typed.pop(key, None)
        if override.is_sweep_override():
            values[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
            typed[key] = _typed_values(override)
        else:
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
    combos = [list(overrides) for overrides in itertools.product(*values.values())]
    swepts = []
    for overrides in combos:
        swept = {}
        for item in overrides:
            key, _, value = item.partition("=")
            if key in typed:
                swept[key] = typed[key].get(value, value)
        swepts.append(swept)
    names = [_name(swept, num) for num, swept in enumerate(swepts)]
    jobs = []
    for num, (overrides, swept, name) in enumerate(zip(combos, swepts, names)):
        if names.count(name) > 1:  # e.g. two paths with the same file name
            name = name[: _MAX_NAME - 12] + f",#{num}"
        jobs.append(PlannedJob(num, overrides, swept, name, resumed_folder(overrides) or Path(sweep_dir) / name))
    return jobs


@functools.lru_cache(maxsize=8)
def _plan_file(path: str, mtime_ns: int) -> list[PlannedJob] | None:
    return plan(OmegaConf.load(path), Path(path).parent)


def plan_of(sweep_dir: str | Path) -> list[PlannedJob] | None:
    """plan() of a sweep folder's multirun.yaml; None where there is none."""
    path = Path(sweep_dir) / MULTIRUN_FILE
    if not path.is_file():
        return None
    return _plan_file(str(path), path.stat().st_mtime_ns)


def resumed_folder(overrides: list[str]) -> Path | None:
    """The folder a job's `resume=` override names, if it has one."""
    for item in overrides:
        if item.lstrip("+").startswith("resume="):
            value = OverridesParser.create().parse_override(item).value()
            return Path(value).resolve() if isinstance(value, str) and value else None
    return None


def planned(overrides: list[str], sweep_dir: str | Path) -> PlannedJob | None:
    """The sweep's entry for the job with these overrides (as Hydra records them), if the plan has it."""
    wanted = sorted(str(o) for o in overrides)
    return next((job for job in plan_of(sweep_dir) or [] if sorted(job.overrides) == wanted), None)


def job_dirname(task_overrides, num: int, sweep_dir: str) -> str:
    """hydra.sweep.subdir: the folder of job `num`, named after the keys the sweep varies.

    A job that resumes a folder (stylelab resume=<sweep folder>) goes on in that folder.
    """
    overrides = [str(o) for o in task_overrides]
    resumed = resumed_folder(overrides)
    if resumed:
        return str(resumed)
    job = planned(overrides, sweep_dir)
    return job.name if job else fallback_dirname(overrides, num)


def fallback_dirname(overrides, num: int) -> str:
    """A job's folder when the sweep's plan cannot be read (another sweeper): named after all its overrides.

    Inert settings are left out; image paths are shortened to their file name so the name stays one
    readable folder.
    """
    pairs = (str(o).partition("=") for o in sorted(str(o) for o in overrides))
    return _name({key: value for key, _, value in pairs if not config.is_inert(key)}, num)


# ---------------------------------------------------------------- the end of a sweep


def statuses(sweep_dir: Path, jobs: list[PlannedJob]) -> list[tuple[PlannedJob, str, str]]:
    """(job, status, reason) for each planned job: done, stopped, failed, killed or not started."""
    out = []
    for job in jobs:
        end = read.ending(job.folder)
        status = "killed" if end.status == "running or killed" else end.status  # the sweep is over
        out.append((job, status, end.reason))
    return out


def report_line(sweep_dir: Path, jobs: list[PlannedJob]) -> tuple[str, bool]:
    """One line for the end of a sweep, and whether any job failed."""
    counted = statuses(sweep_dir, jobs)
    order = ("done", "stopped", "failed", "killed", "not started")
    counts = {status: sum(1 for _, s, _ in counted if s == status) for status in order}
    parts = [f"{n} {status}" for status, n in counts.items() if n or status in ("done", "failed", "not started")]
    line = f"stylelab: sweep {sweep_dir}: {len(jobs)} jobs: " + ", ".join(parts)
    failures = [f"{job.name} ({reason})" for job, status, reason in counted if status == "failed"]
    if failures:
        line += "; failed: " + "; ".join(failures)
    return line, bool(failures)


class SweepReport(Callback):
    """Hydra callback: at the end of a sweep, one line of how its jobs ended; exit status 1 if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = plan_of(sweep_dir)
        if not jobs:
            return
        line, failed = report_line(sweep_dir, jobs)
        print(line, file=sys.stderr if failed or STOP.caught else sys.stdout, flush=True)
        if STOP.caught:  # Ctrl-C or a signal: the jobs running stopped with their checkpoints, no new one began
            sys.exit(exit_code(STOP.caught))
        if failed:
            sys.exit(1)

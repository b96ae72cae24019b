"""The `stylelab` command: the Hydra app. The work is job.run; around it:

- main() reads the command line first (stylelab.cli.argv): paths as the shell passed them, one-sentence
  errors for typos, and `resume=<sweep folder>` turned into a sweep over the jobs that did not finish.
- resume=<run folder> alone continues that run with the config it saved (.hydra/config.yaml); the command
  line may change steps and what does not change the picture, anything else is refused.
- A single run's mistake is one sentence and exit code 2, and leaves no run folder behind. In a sweep, a
  job that fails records why (error.txt and its TensorBoard) and the sweep goes on; the report at its end
  (stylelab.cli.sweep.SweepReport) counts the jobs and exits non-zero if any failed.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from datetime import datetime
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from stylelab import config
from stylelab.cli import argv as command_line
from stylelab.cli import sweep
from stylelab.cli.common import EXIT_USER_ERROR, fail, one_line_warnings
from stylelab.errors import StyleLabError
from stylelab.io.atomic import write_atomic
from stylelab.overrides import compose_with_choices
from stylelab.sweeps import read

config.register()


def _clean_failed_run(run_dir: Path, record: Path) -> None:
    """After a user error, remove what Hydra wrote for this attempt: the whole run folder if it holds nothing
    else, or this attempt's record (a refused resume's .hydra/resumed-<time>) from a folder it resumed."""
    ours = [p for p in run_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"] if run_dir.is_dir() else []
    if not ours:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif record.name.startswith("resumed-"):
        shutil.rmtree(record, ignore_errors=True)


# ---------------------------------------------------------------- resume=<run folder>


def _key(override: str) -> str:
    return OverridesParser.create().parse_override(override).key_or_group


def resumed_config(cfg: DictConfig, choices: dict[str, str], overrides: list[str]) -> tuple[DictConfig, dict, bool]:
    """The config a resumed run goes on with: the one its folder saved, with this command line's steps and
    inert settings. Returns (config, choices, whether the run starts over: it has no checkpoint.pt)."""
    folder = Path(cfg.resume)
    saved_file = folder / ".hydra" / "config.yaml"
    if not saved_file.is_file():  # a folder the API wrote: this command line's settings, checked by the checkpoint
        return cfg, choices, False
    saved = OmegaConf.merge(OmegaConf.structured(config.StyleLabConfig), OmegaConf.load(saved_file))
    saved_choices = dict(choices)
    if (folder / ".hydra" / "hydra.yaml").is_file():
        runtime = OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra.runtime
        saved_choices = {g: o for g, o in (runtime.get("choices") or {}).items() if not str(g).startswith("hydra")}
    changes = []  # what this command line may change: steps, and what does not change the picture
    for key in (_key(o) for o in overrides):
        if key == "steps" or config.is_inert(key):
            changes.append(key)
            continue
        if key in saved_choices or key in choices:
            old, new = saved_choices.get(key), choices.get(key)
        else:
            old, new = OmegaConf.select(saved, key), OmegaConf.select(cfg, key)
            old, new = config.plain(old), config.plain(new)
        if old != new:
            raise StyleLabError(f"cannot resume {folder}: it was made with {key}={old}, and this command line "
                                f"sets {key}={new}; only steps and settings that do not change the picture "
                                f"(device, logging, speed switches) may change")
    with open_dict(saved):
        for key in changes:
            if not key.startswith("hydra"):
                OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=False)
    start_over = not (folder / "checkpoint.pt").is_file()
    if start_over:
        saved.resume = None
    return saved, saved_choices, start_over


def _save_resumed(cfg: DictConfig) -> None:
    """Hydra saved the config this command line composed; the run goes on with the one resumed."""
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir) / str(hydra_cfg.output_subdir)
    text = OmegaConf.to_yaml(cfg)
    write_atomic(folder / "config.yaml", lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------- a job that fails in a sweep


def record_failure(run_dir: Path, reason: str, details: str, cfg: DictConfig, choices: dict[str, str],
                   varying: set[str]) -> None:
    """error.txt and the run's TensorBoard say why the job failed (HParams lists it with status failure)."""
    text = reason + ("\n\n" + details if details else "") + "\n"
    write_atomic(run_dir / read.ERROR_FILE, lambda f: f.write(text.encode("utf-8")))
    from stylelab import job
    from stylelab.callbacks import TensorBoard

    try:
        hparams = job.hparams(cfg, choices)
    except Exception:  # a config that cannot even be resolved: the error says why
        hparams = {group: option for group, option in choices.items() if option is not None}
    tb = TensorBoard(run_dir / "tb", steps=0)
    try:
        tb.failed(hparams, reason, varying)
    finally:
        tb.close()


def _varying(hydra_cfg) -> set[str]:
    """The settings this job's sweep varies (its HParams columns that differ between runs)."""
    jobs = sweep.plan_of(hydra_cfg.sweep.dir)
    num = hydra_cfg.job.num
    return {key.lstrip("+~") for key in jobs[num].swept} if jobs and num < len(jobs) else set()


@hydra.main(version_base="1.3", config_path="pkg://stylelab.configs", config_name="config")
def app(cfg: DictConfig) -> None:
    from stylelab import checkpoint, job  # torch: only once there is a job to run

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    choices = {group: option for group, option in hydra_cfg.runtime.choices.items() if not group.startswith("hydra")}
    varying = _varying(hydra_cfg) if sweeping else set()
    try:
        (run_dir / read.ERROR_FILE).unlink(missing_ok=True)  # a job run again starts without its old error
        missing = config.missing_keys(cfg)
        if missing:
            raise StyleLabError(f"this config needs a value for {', '.join(missing)}: give it on the command "
                                f"line, e.g. {missing[0]}=<...>")
        start_over = False
        if cfg.resume:
            cfg, choices, start_over = resumed_config(cfg, choices, list(hydra_cfg.overrides.task))
            _save_resumed(cfg)
            if start_over:
                print(f"stylelab: there is no {checkpoint.FILE} in {run_dir}, so that run starts over there",
                      flush=True)
        job.run(cfg, run_dir, choices=choices, start_over=start_over, varying=varying)
    except KeyboardInterrupt:  # before or after the loop; the loop itself saves and reports
        print("stylelab: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except StyleLabError as exc:
        if not sweeping:
            print(f"stylelab: error: {exc}", file=sys.stderr, flush=True)
            _clean_failed_run(run_dir, run_dir / str(hydra_cfg.output_subdir))
            sys.exit(EXIT_USER_ERROR)
        record_failure(run_dir, str(exc), "", cfg, choices, varying)
        print(f"stylelab: error: job {hydra_cfg.job.num} ({run_dir.name}): {exc}", file=sys.stderr, flush=True)
    except Exception as exc:  # a crash; in a sweep the other jobs go on
        if not sweeping:
            raise
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        record_failure(run_dir, reason, traceback.format_exc(), cfg, choices, varying)
        print(f"stylelab: error: job {hydra_cfg.job.num} ({run_dir.name}) crashed: {reason} (traceback in "
              f"{run_dir / read.ERROR_FILE})", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- resume=<sweep folder>


def _resume_sweep(argv: list[str]) -> list[str]:
    """`resume=<sweep folder>` -> a sweep over that sweep's jobs that did not finish, each in its own folder."""
    args, where = command_line.split_argv(argv)
    found = [(i, argv[i]) for i in where if argv[i].startswith("resume=")]
    if not found:
        return argv
    index, override = found[-1]
    value = OverridesParser.create().parse_override(override).value()
    folder = Path(str(value)) if value else None
    jobs = sweep.plan_of(folder) if folder and folder.is_dir() else None
    if not jobs:
        return argv  # a run folder (or a mistake the run reports)
    pending = []
    for planned in jobs:
        job_dir = planned.folder
        if read.ending(job_dir).status == "done":
            continue
        if not (job_dir / ".hydra" / "config.yaml").is_file():
            _write_planned(job_dir, planned)  # never started: its config from the sweep's plan
        pending.append(job_dir)
    if not pending:
        print(f"stylelab: every job of {folder} is done; nothing to resume", flush=True)
        sys.exit(0)
    print(f"stylelab: resuming {len(pending)} of the {len(jobs)} jobs of {folder}", flush=True)
    rest = [a for i, a in enumerate(argv) if i != index and a not in ("-m", "--multirun")]
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return ["-m", *rest, "resume=" + ",".join(command_line.quote(str(p)) for p in pending),
            f"hydra.sweep.dir={command_line.quote(str(folder / '.resumed' / stamp))}"]


def _write_planned(job_dir: Path, planned: read.PlannedJob) -> None:
    """A job that never started gets the .hydra/ record Hydra would have written, from the sweep's plan."""
    cfg, choices = compose_with_choices(*planned.overrides)
    record = job_dir / ".hydra"
    files = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(planned.overrides))),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create(
            {"hydra": {"job": {"num": planned.num}, "runtime": {"cwd": str(Path.cwd()), "choices": choices}}})),
    }
    for name, text in files.items():
        write_atomic(record / name, lambda f, text=text: f.write(text.encode("utf-8")))


def main() -> None:
    one_line_warnings("stylelab")
    try:
        argv = command_line.prepare(sys.argv[1:])
        argv = _resume_sweep(argv)
    except StyleLabError as exc:
        fail("stylelab", str(exc))
    sys.argv = [sys.argv[0], *argv]
    app()

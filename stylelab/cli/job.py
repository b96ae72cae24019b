"""One job of the `stylelab` command, in the process that runs it: its config checked, built, run in its
folder, and what it prints; a mistake as one sentence, a sweep's failed job recorded (error.txt, HParams).

stylelab.cli.app imports this module once Hydra calls the job, not before: it brings torch (seconds), and
`--help`, `--cfg job` and the one-sentence mistakes answer without it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from stylelab import build, config, loop
from stylelab.cli import resume, sweep
from stylelab.cli.common import EXIT_USER_ERROR, stopped_before_the_run
from stylelab.errors import StyleLabError
from stylelab.io import folders
from stylelab.io.atomic import write_atomic
from stylelab.loop import Diverged
from stylelab.observers import TensorBoard
from stylelab.signals import STOP, exit_code
from stylelab.sweeps import read
from stylelab.video import run as clip


def _clean_failed_run(run_dir: Path, record: Path) -> None:
    """After a user error, remove what this attempt wrote: the whole run folder unless it holds a result (a
    checkpoint, a picture), or only this attempt's record (a refused resume's .hydra/resumed-<time>)."""
    results = [
        p
        for p in (run_dir.iterdir() if run_dir.is_dir() else ())
        if p.name in (folders.CHECKPOINT, folders.CLIP_STATE, "final.png") or p.name.startswith("step_")
    ]
    if not results and not record.name.startswith("resumed-"):
        shutil.rmtree(run_dir, ignore_errors=True)
    elif record.name.startswith("resumed-"):
        shutil.rmtree(record, ignore_errors=True)


def _save_resumed(cfg: DictConfig) -> None:
    """Hydra saved the config this command line composed; the run goes on with the one resumed."""
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir) / str(hydra_cfg.output_subdir)
    text = OmegaConf.to_yaml(cfg)
    write_atomic(folder / "config.yaml", lambda f: f.write(text.encode("utf-8")))


def record_failure(
    run_dir: Path,
    reason: str,
    details: str,
    cfg: DictConfig,
    settings: dict,
    varying: dict[str, str],
    tensorboard: bool = True,
) -> None:
    """error.txt and the run's TensorBoard say why the job failed (HParams lists it with status failure)."""
    text = reason + ("\n\n" + details if details else "") + "\n"
    write_atomic(run_dir / read.ERROR_FILE, lambda f: f.write(text.encode("utf-8")))
    if tensorboard:
        tb = TensorBoard(run_dir, steps=0, varying=varying)
        try:
            tb.failed(settings, reason)
        finally:
            tb.close()


def _settings(cfg: DictConfig, choices: dict[str, str]) -> dict:
    """What HParams shows of a job that failed: its settings, or only its choices if the config cannot resolve."""
    chosen = {group: option for group, option in choices.items() if option is not None}
    try:
        return {**chosen, **config.settings(cfg)}
    except Exception:
        return chosen


def _shell_word(override: str) -> str:
    """An override as a shell passes it on unchanged: as it is where it can be, in double quotes where only
    Hydra's single quotes are in the way ("content='/data/a b.jpg'"), else shlex's quoting."""
    if shlex.quote(override) == override:
        return override
    if not any(c in override for c in '"$`\\!'):
        return f'"{override}"'
    return shlex.quote(override)


def notes(cfg: DictConfig, overrides: list[str], typed: dict[str, str]) -> dict[str, str]:
    """The Text tab of a run: the command that makes this run alone (a sweep's job included, its swept values
    as the user typed them), its overrides one per line, and the config it ran with (Markdown: TensorBoard
    renders code blocks as typed)."""
    overrides = [
        f"{key}={typed[key.lstrip('+~')]}" if key.lstrip("+~") in typed else item
        for item in overrides
        for key in [item.partition("=")[0]]
    ]
    command = " ".join(["stylelab", *map(_shell_word, overrides)])
    listed = "\n".join(f"- `{o}`" for o in overrides) or "(none: the defaults)"
    return {
        "command": f"`{command}`",
        "overrides": listed,
        "config": "```yaml\n" + OmegaConf.to_yaml(cfg, resolve=True) + "```",
    }


def _varying(hydra_cfg) -> dict[str, str]:
    """The settings this job's sweep varies, with this job's value as the user typed it (`1e3`): its HParams
    columns that differ between runs, shown as typed."""
    job = sweep.planned(list(hydra_cfg.overrides.task), hydra_cfg.sweep.dir)
    return {key.lstrip("+~"): str(value) for key, value in job.swept.items()} if job else {}


def _end_of_sweep_by_signal(hydra_cfg) -> None:
    """A signal stops the whole sweep: the report, with the jobs that did not start, and the signal's exit status.

    A job in a process of joblib's only returns: the sweep's own process reports, once its jobs are back
    (SweepReport); a job of the basic launcher ends the sweep here.
    """
    if "joblib" in str(hydra_cfg.launcher.get("_target_", "")):
        return
    jobs = sweep.plan_of(hydra_cfg.sweep.dir)
    if jobs:
        line, _ = sweep.report_line(Path(hydra_cfg.sweep.dir), jobs)
        print(line, file=sys.stderr, flush=True)
    sys.exit(exit_code(STOP.caught))


def run(cfg: DictConfig) -> None:
    """The job Hydra calls with its composed config."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    STOP.install()  # a sweep's job in a process of its own (joblib, SLURM) takes the signals over there
    if STOP.caught:  # before this job began (or while Hydra made its folder): it does not start
        _clean_failed_run(run_dir, run_dir / str(hydra_cfg.output_subdir))
        if not sweeping:
            stopped_before_the_run()
        _end_of_sweep_by_signal(hydra_cfg)
        return
    choices = {group: option for group, option in hydra_cfg.runtime.choices.items() if not group.startswith("hydra")}
    varying = _varying(hydra_cfg) if sweeping else {}
    try:
        result = _job(cfg, choices, hydra_cfg, run_dir, varying)
    except KeyboardInterrupt:  # before or after the loop; the loop itself saves and reports
        print("stylelab: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except Diverged as exc:  # its last finite image and checkpoint are kept
        print(f"stylelab: error: {exc}", file=sys.stderr, flush=True)
        if not sweeping:
            sys.exit(1)
        record_failure(run_dir, str(exc), "", cfg, {}, varying, tensorboard=False)  # the run logged it there
        return
    except StyleLabError as exc:
        if not sweeping:
            print(f"stylelab: error: {exc}", file=sys.stderr, flush=True)
            _clean_failed_run(run_dir, run_dir / str(hydra_cfg.output_subdir))
            sys.exit(EXIT_USER_ERROR)
        record_failure(run_dir, str(exc), "", cfg, _settings(cfg, choices), varying)
        print(f"stylelab: error: job {hydra_cfg.job.num} ({run_dir.name}): {exc}", file=sys.stderr, flush=True)
        return
    except Exception as exc:  # a crash; in a sweep the other jobs go on
        if not sweeping:
            raise
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        record_failure(run_dir, reason, traceback.format_exc(), cfg, _settings(cfg, choices), varying)
        print(
            f"stylelab: error: job {hydra_cfg.job.num} ({run_dir.name}) crashed: {reason} (traceback in "
            f"{run_dir / read.ERROR_FILE})",
            file=sys.stderr,
            flush=True,
        )
        return
    _report(result, run_dir, hydra_cfg, sweeping)


def _job(cfg: DictConfig, choices: dict, hydra_cfg, run_dir: Path, varying: dict):
    """One job: its config checked (and a resumed run's read back), built, run in its folder."""
    (run_dir / read.ERROR_FILE).unlink(missing_ok=True)  # a job run again starts without its old error
    config.require_values(cfg)
    start_over = False
    if cfg.resume:
        cfg, choices, start_over = resume.resumed_config(cfg, choices, list(hydra_cfg.overrides.task))
        _save_resumed(cfg)
        if start_over:
            print(f"stylelab: there is no checkpoint.pt in {run_dir}, so that run starts over there", flush=True)
    parts = build.build(cfg, choices)
    if parts.video is not None:  # a clip: frame by frame (stylelab.video.run), flows shared by a sweep's jobs
        return clip.run_clip(
            parts,
            run_dir,
            flows_folder=Path(hydra_cfg.sweep.dir) / "flows" if hydra_cfg.mode == RunMode.MULTIRUN else None,
            resume=bool(cfg.resume) or requeued(run_dir),
            stop=STOP.reason,
            notes=notes(cfg, list(hydra_cfg.overrides.task), varying),
        )
    return loop.run(
        parts,
        run_dir,
        resume=bool(cfg.resume) or requeued(run_dir),
        start_over=start_over,
        stop=STOP.reason,
        varying=varying,
        notes=notes(cfg, list(hydra_cfg.overrides.task), varying),
    )


def _report(result, run_dir: Path, hydra_cfg, sweeping: bool) -> None:
    """What a finished job prints, and the signal that stopped it passed on."""
    status = f" ({result.stopped})" if result.stopped else ""
    if isinstance(result, clip.ClipResult):
        written = result.video_path or f"{len(result.frames)} frames into {run_dir / clip.FRAMES}"
        print(
            f"stylelab: wrote {written} ({len(result.frames)} frames, temporal error {result.temporal_error:.4g}) "
            f"after {result.steps_done} steps in {result.seconds:.1f} s (device {result.device}){status}",
            flush=True,
        )
        if result.interrupted:
            print(f"stylelab: continue with resume={run_dir}", flush=True)
    else:
        print(
            f"stylelab: wrote {result.final_path} after {result.steps_done} steps in {result.seconds:.1f} s "
            f"({result.seconds_per_step:.3f} s/step, device {result.device}){status}",
            flush=True,
        )
    if getattr(result, "checkpoint_path", None):
        print(f"stylelab: saved {result.checkpoint_path}; continue with resume={run_dir}", flush=True)
    if STOP.caught is not None and (sweeping or STOP.caught != signal.SIGINT):  # a single run's Ctrl-C: exit 0
        STOP.pass_on()  # under submitit (SLURM), its handler requeues the job and exits
        if sweeping:
            _end_of_sweep_by_signal(hydra_cfg)  # the basic launcher's sweep ends here; a joblib job returns
            return
        sys.exit(exit_code(STOP.caught))


def requeued(folder: Path) -> bool:
    """A job SLURM requeued (preempted, timed out, node failure) continues from its own checkpoint."""
    restarted = os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")
    return restarted and (folder / folders.CHECKPOINT).is_file()

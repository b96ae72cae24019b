"""The `stylelab` command: the Hydra app around stylelab.loop.run (the job itself: stylelab.cli.job).

- main() reads the command line first (stylelab.cli.argv): paths as the shell passed them, one-sentence
  errors for typos, and `resume=<sweep folder>` turned into a sweep over the jobs that did not finish.
- resume=<run folder> alone continues that run with the config it saved (stylelab.cli.resume).
- A single run's mistake is one sentence and exit code 2, and leaves no run folder behind. In a sweep, a
  job that fails records why (error.txt and its TensorBoard) and the sweep goes on; the report at its end
  (stylelab.cli.sweep.SweepReport) counts the jobs and exits non-zero if any failed.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stylelab.cli import argv as command_line
from stylelab.cli import resume, sweep
from stylelab.cli.common import fail, setup, stopped_before_the_run
from stylelab.cli.help import groups_help, settings_help
from stylelab.cli.help import render as render_help
from stylelab.errors import StyleLabError
from stylelab.io import lock
from stylelab.io.atomic import check_folder
from stylelab.overrides import compose_with_choices, explain
from stylelab.signals import STOP

# the resolvers configs/hydra/default.yaml uses: folder names of a sweep's jobs, a resumed run's folder, --help
OmegaConf.register_new_resolver("stylelab_dirname", sweep.job_dirname, replace=True)
OmegaConf.register_new_resolver("stylelab_if_resumed", lambda resume, yes, no: yes if resume else no, replace=True)
OmegaConf.register_new_resolver("stylelab_groups", groups_help, replace=True)
OmegaConf.register_new_resolver("stylelab_settings", settings_help, replace=True)


@hydra.main(version_base="1.3", config_path="pkg://stylelab.configs", config_name="config")
def app(cfg: DictConfig) -> None:
    # imported here, once a job runs: stylelab.cli.job brings torch (seconds), which --help, --cfg job and the
    # one-sentence mistakes of the command line do not need (benchmarks/startup.py)
    from stylelab.cli import job

    job.run(cfg)


def _bytes_written(cfg: DictConfig) -> int:
    """About what a run of `cfg` writes at most: final.png, TensorBoard's images, checkpoint.pt (when every N
    steps), uncompressed, at the longest side squared."""
    size = max(cfg.schedule.sizes or [cfg.image.size])
    steps = sum(cfg.schedule.steps or [cfg.steps])
    image = 3 * size * size  # bytes of an 8-bit RGB picture
    pictures = 1 + steps // max(cfg.log.image_every, 1) + 4 * len(cfg.schedule.sizes or [0])
    history = int(cfg.optimizer.get("history_size", 1))  # L-BFGS keeps two images per step of its history
    checkpoint_bytes = (2 * history + 2) * 4 * image if cfg.checkpoint_every else 0
    return image * pictures + checkpoint_bytes


def _check_folders(line: command_line.CommandLine) -> None:
    """Before Hydra writes anything: the run's (or sweep's) folder can be made and has room; a resumed run
    folder is a run's, and this process holds its lock."""
    found = resume.resume_value(line)
    if found and found[1] is not None:
        resume.check_run_folder(found[1])
        lock.hold(found[1])
        return
    first = command_line.jobs_of(line.overrides)[0] if line.overrides else []  # a sweep's first job: its folders
    cfg, _ = compose_with_choices(*first, *command_line.search_path(line.config_dir, line.overrides), hydra=True)
    folder = cfg.hydra.sweep.dir if line.multirun else cfg.hydra.run.dir
    check_folder(folder, _bytes_written(cfg), "sweep folder" if line.multirun else "run folder")


def _quick_help(line) -> bool:
    """Print `--help` without Hydra's app, when there is nothing it would do differently: no folder of the
    user's own configs (Hydra's loader lists their options)."""
    if (
        not ("--help" in line.flags or "-h" in line.flags)
        or line.config_dir
        or any(o.startswith("hydra.searchpath=") for o in line.overrides)
    ):
        return False
    try:
        text = render_help(line.overrides)
    except (HydraException, OmegaConfBaseException) as exc:  # a mistake in the overrides: one sentence
        raise StyleLabError(explain(exc, line.overrides)) from None
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `stylelab --help | head`: the reader has all it wanted; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


def main() -> None:
    """`stylelab`: the command line checked, then Hydra's app (stylelab.cli.main takes the signals over first)."""
    setup("stylelab")
    try:
        line = command_line.prepare(sys.argv[1:])
        if _quick_help(line):  # Hydra's own --help takes seconds longer; it stays for the cases below
            sys.exit(0)
        argv = line.for_hydra()
        found = resume.resume_value(line) if line.runs else None
        resumed = resume.sweep_resumed(line, found[1], found[0]) if found and found[1] is not None else None
        if resumed is not None:
            argv, pending, total = resumed
            if not argv:
                print(f"stylelab: every job of {found[1]} is done; nothing to resume", flush=True)
                sys.exit(0)
            print(f"stylelab: resuming {pending} of the {total} jobs of {found[1]}", flush=True)
        elif line.runs and os.environ.get("HYDRA_FULL_ERROR") != "1":
            _check_folders(line)
    except StyleLabError as exc:
        fail("stylelab", str(exc))
    if STOP.caught:  # a signal while torch and Hydra were loading: nothing has been written
        stopped_before_the_run()
    sys.argv = [sys.argv[0], *argv]
    app()

"""One run from its config: build, resume if asked, the loop with its watchers, then the artifacts.

The `stylelab` command and the Python API both run this, so the same config gives the same final.png.
With a run folder it writes final.png, tb/ (TensorBoard), step PNGs and checkpoint.pt there; without one
(a notebook) it only returns the result. Everything is read and checked before the first file is written.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from stylelab import build, checkpoint, config
from stylelab.callbacks import Progress, SaveCheckpoint, SaveEvery, TensorBoard
from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.loop import RunResult, optimize


def hparams(cfg: DictConfig, choices: dict[str, str]) -> dict[str, Any]:
    """What the HParams tab shows: the option chosen in every config group (loss/style: w2, optimizer: adam)
    and every setting that changes the picture, as TensorBoard takes them (numbers, strings, booleans)."""
    out: dict[str, Any] = {group: option for group, option in sorted(choices.items())
                           if option is not None and not config.is_inert(group)}
    loss = cfg.loss
    out["alpha/beta"] = loss.alpha / loss.beta if loss.beta else float("inf")  # the paper's ratio
    for key, value in config.settings(cfg).items():
        if key.endswith("._target_") or key.endswith("._partial_"):
            continue  # the group's option above names it
        out[key] = _hparam_value(value)
    return out


def _hparam_value(value: Any):
    """Numbers, strings and booleans as they are; lists as the command line writes them ([relu1_1,relu2_1])."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return "[" + ",".join(str(_hparam_value(v)) for v in value) + "]"
    return "null" if value is None else str(value)


def run(cfg: DictConfig, run_dir: Path | None, *, choices: dict[str, str] | None = None,
        pictures: dict[str, torch.Tensor] | None = None, callbacks=(), start_over: bool = False,
        varying: set[str] = frozenset()) -> RunResult:
    """Run the job `cfg` describes; with `run_dir`, write its artifacts there (and resume from it if asked).

    start_over: run_dir holds an earlier, unfinished attempt without a checkpoint; its TensorBoard events
    are dropped and the run begins again at step 0. varying: the settings the job's sweep varies (HParams).
    """
    built = build.build(cfg, pictures=pictures, progress=cfg.log.progress)
    steps = cfg.steps
    # the options chosen first, so a mismatch is named as the user chose it (optimizer='lbfgs', not its class)
    chosen = {group: option for group, option in (choices or {}).items() if not config.is_inert(group)}
    fingerprint = checkpoint.fingerprint({**chosen, **config.settings(cfg)}, built.content, built.style)
    resume_dir = cfg.resume or (_requeued(run_dir) if run_dir else None)
    if resume_dir and run_dir is None:
        raise StyleLabError("resume needs a run folder to continue in")
    start = checkpoint.load(Path(resume_dir), fingerprint) if resume_dir else None
    if start and start.state.step > steps:
        raise StyleLabError(f"cannot resume from '{start.path}': it is at step {start.state.step}, beyond steps={steps}")
    if start:
        start.restore_rng()
        print(f"stylelab: resuming {resume_dir} at step {start.state.step}", flush=True)
    first_step = start.state.step if start else 0
    image = start.image.to(built.device) if start else built.init

    with checkpoint.StopSignals() as signals:  # SIGINT/SIGTERM/SIGUSR2 end the loop between two updates
        watchers = list(callbacks)
        progress = Progress(steps, every=cfg.log.every, initial=first_step, disable=not cfg.log.progress)
        watchers.append(progress)
        tb = saver = None
        if run_dir is not None:
            # purge_step: TensorBoard drops what the stopped run logged from this step on, so no step is doubled
            tb = TensorBoard(run_dir / "tb", steps=steps, every=cfg.log.every, image_every=cfg.log.image_every,
                             purge_step=first_step if start else (0 if start_over else None))
            if not start:
                tb.inputs(built.content, built.style)
            saver = SaveCheckpoint(run_dir, cfg.checkpoint_every, fingerprint)
            watchers += [tb, SaveEvery(run_dir, cfg.save_every)]
        try:
            result = optimize(image, built.features, built.objective, steps=steps, optimizer=built.optimizer,
                              callbacks=watchers, state=start.state if start else None, on_state=saver,
                              stop=signals.reason)
        finally:
            progress.close()
        if run_dir is None:
            return result
        if result.interrupted and result.state:
            saver.save(result.image, result.state)
        final = images.save_image(result.image, run_dir / "final.png")
        per_step = result.seconds / max(result.steps_done, 1)
        tb.hparams(hparams(cfg, choices or {}), result.final, result.steps_done, {"summary/seconds_per_step": per_step},
                   varying)
        tb.close()

    status = f" ({result.stopped})" if result.stopped else ""
    print(
        f"stylelab: wrote {final} after {result.steps_done} steps in {result.seconds:.1f} s "
        f"({per_step:.3f} s/step, device {built.device.type}){status}",
        flush=True,
    )
    if result.interrupted and result.state:
        print(f"stylelab: saved {run_dir / checkpoint.FILE}; continue with resume={run_dir}", flush=True)
    if signals.caught not in (None, signal.SIGINT):
        signals.pass_on()  # under submitit (SLURM), its handler requeues the job and exits
        sys.exit(checkpoint.exit_code(signals.caught))
    return result


def _requeued(run_dir: Path) -> Path | None:
    """A job SLURM requeued (preempted, timed out, node failure) continues from its own checkpoint."""
    restarted = os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")
    return run_dir if restarted and (run_dir / checkpoint.FILE).is_file() else None

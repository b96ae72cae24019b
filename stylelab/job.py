"""One run from its config: build, resume if asked, the loop with its watchers, then the artifacts.

The `stylelab` command and the Python API both run this, so the same config gives the same final.png.
With a run folder it writes final.png, tb/ (TensorBoard), step PNGs and checkpoint.pt there; without one
(a notebook) it only returns the result. Everything is read and checked before the first file is written.
"""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from stylelab import build, checkpoint, config
from stylelab.callbacks import Progress, SaveCheckpoint, SaveEvery, TensorBoard
from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.loop import LoopState, RunResult, optimize


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
        pictures: dict | None = None, callbacks=(), start_over: bool = False,
        varying: set[str] = frozenset()) -> RunResult:
    """Run the job `cfg` describes; with `run_dir`, write its artifacts there (and resume from it if asked).

    start_over: run_dir holds an earlier, unfinished attempt without a checkpoint; its TensorBoard events
    are dropped and the run begins again at step 0. varying: the settings the job's sweep varies (HParams).
    """
    built = build.build(cfg, pictures=pictures, progress=cfg.log.progress)
    levels = built.levels  # one, or coarse to fine several; steps count on across them
    steps = levels[-1].last
    # the options chosen first, so a mismatch is named as the user chose it (optimizer='lbfgs', not its class)
    chosen = {group: option for group, option in (choices or {}).items() if not config.is_inert(group)}
    masks = [*(built.content_masks or []), *(built.style_masks or [])]
    fingerprint = checkpoint.fingerprint({**chosen, **config.settings(cfg)}, built.original, built.styles, masks)
    resume_dir = cfg.resume or (_requeued(run_dir) if run_dir else None)
    if resume_dir and run_dir is None:
        raise StyleLabError("resume needs a run folder to continue in")
    start = checkpoint.load(Path(resume_dir), fingerprint) if resume_dir else None
    if start:
        _check_resumable(start, built, steps)
        start.restore_rng()
        print(f"stylelab: resuming {resume_dir} at step {start.state.step}", flush=True)

    with checkpoint.StopSignals() as signals:  # SIGINT/SIGTERM/SIGUSR2 end the loop between two updates
        watchers = list(callbacks)
        progress = Progress(steps, every=cfg.log.every, initial=start.state.step if start else 0,
                            disable=not cfg.log.progress)
        watchers.append(progress)
        tb = saver = None
        if run_dir is not None:
            # purge_step: TensorBoard drops what the stopped run logged from this step on, so no step is doubled
            tb = TensorBoard(run_dir / "tb", steps=steps, every=cfg.log.every, image_every=cfg.log.image_every,
                             purge_step=start.state.step if start else (0 if start_over else None),
                             level_ends=[level.last for level in levels[:-1]])
            if not start:
                tb.inputs(built.first.content, built.first.styles)
            saver = SaveCheckpoint(run_dir, cfg.checkpoint_every, fingerprint)
            watchers += [tb, SaveEvery(run_dir, cfg.save_every)]
        try:
            result, skipped = _levels(built, start, watchers, saver, signals.reason)
        finally:
            progress.close()
        picture = built.colour.finish(result.image, images.resize_to(built.original, result.image.shape[-2:])[None]
                                      .to(result.image.device))
        if run_dir is None:
            result.image = picture
            return result
        if result.interrupted and result.state:
            saver.save(result.image, result.state)  # the optimised image, not the finished picture: it resumes
        final = images.save_image(picture, run_dir / "final.png")
        if result.steps_done < steps:
            tb.ended(result.steps_done, result.image)  # a resumed run drops it again (purge_step) and goes on
        if picture is not result.image:  # a colour control made the picture from the optimised image
            tb.writer.add_image("image/final", picture[0].clamp(0, 1), result.steps_done)
        per_step = result.seconds / max(result.steps_done - skipped, 1)  # the steps a level skipped took no time
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


def _levels(built: build.Built, start, watchers, saver, stop) -> tuple[RunResult, int]:
    """The levels of the run, each from the last one's result (or from the checkpoint it resumes); also how many
    steps were skipped because a tolerance ended a level early."""
    levels = built.levels
    image, seconds, result, skipped = None, start.state.seconds if start else 0.0, None, 0
    for k in range(start.state.level if start else 0, len(levels)):
        level, last = levels[k], k == len(levels) - 1
        resuming = start is not None and k == start.state.level
        if resuming and start.state.step == level.last and not last:
            image = start.image.to(built.device)  # checkpointed at the end of its level: the next starts from it
            for cb in watchers:
                cb.on_image(level.last, image)  # that level's last image, as an uninterrupted run showed it
            continue
        if k == 0:
            level_images = built.first
        else:
            level_images = built.level(level.size, previous=None if resuming else image)
        x = start.image.to(built.device) if resuming else level_images.init
        state = start.state if resuming else LoopState(step=level.first, seconds=seconds, level=k)
        result = optimize(x, built.features, built.objective, steps=level.last, optimizer=built.optimizer,
                          callbacks=watchers, state=state, on_state=saver, stop=stop,
                          announce_start=k == 0 or resuming, evaluate_end=last)
        image, seconds = result.image, result.seconds
        if result.interrupted or last:
            break
        if result.stopped:  # a tolerance ended this level early: the finer ones still have their steps
            if not math.isfinite(float(result.final.total)):
                break  # a loss that blew up ends the run
            print(f"stylelab: level {k + 1} ({level.size} px) {result.stopped}; level {k + 2} starts at step "
                  f"{levels[k + 1].first}", flush=True)
            for cb in watchers:
                cb.on_image(level.last, image)  # the level's result stands for its remaining steps
            skipped += level.last - result.steps_done
    return result, skipped


def _check_resumable(start, built: build.Built, steps: int) -> None:
    """The checkpoint's step and image fit this run's levels."""
    levels, k = built.levels, start.state.level
    if start.state.step > steps:
        raise StyleLabError(f"cannot resume from '{start.path}': it is at step {start.state.step}, beyond steps={steps}")
    if k >= len(levels) or not levels[k].first <= start.state.step <= levels[k].last:
        raise StyleLabError(f"cannot resume from '{start.path}': it is at step {start.state.step} of level {k + 1}, "
                            f"which this run's schedule does not have")
    expected = built.size_of(levels[k].size)
    if tuple(start.image.shape[-2:]) != tuple(expected):
        raise StyleLabError(f"cannot resume from '{start.path}': its image is {start.image.shape[-1]}x"
                            f"{start.image.shape[-2]}, not {expected[1]}x{expected[0]}")


def _requeued(run_dir: Path) -> Path | None:
    """A job SLURM requeued (preempted, timed out, node failure) continues from its own checkpoint."""
    restarted = os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")
    return run_dir if restarted and (run_dir / checkpoint.FILE).is_file() else None

"""One run, top to bottom: read the inputs, load the network, then for each level prepare its images and
targets and step until it is done; checkpoint and stop where that happens; write the picture.

Observers (TensorBoard, the progress bar, step PNGs) are told what happens and never steer. It returns what
happened, raises StyleLabError, prints nothing (notes go to the `stylelab` logger) and never exits.

Step numbering: "step s" is the image after s optimizer updates, counted on across the levels. Step 0 is
the initial image; the losses logged at step s are those of that image (L-BFGS evaluates them at the start
of update s+1), and after a level's last update one more forward pass gives the losses of its last image.
Where one level hands over to the next, both are logged: the coarse level's last, then the fine level's first.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import torch

from stylelab import backend, checkpoint, levels, memory, optim
from stylelab.build import Parts
from stylelab.checkpoint import LoopState
from stylelab.errors import StyleLabError
from stylelab.io import images, lock
from stylelab.losses import balance as balancing
from stylelab.losses.base import Evaluation
from stylelab.observers import Curves, Observer, Progress, RunEnd, SaveEvery, TensorBoard
from stylelab.signals import StopSignals

log = logging.getLogger("stylelab")


@dataclass
class RunResult:
    image: torch.Tensor  # (1, 3, H, W): the picture (the colour control's finish applied), unclamped
    steps_done: int
    final: Evaluation | None  # the losses of the last image
    seconds: float  # optimisation time, over all the runs that led here
    stopped: str | None = None  # why the run ended before its last step, if it did
    interrupted: bool = False  # by a signal (a checkpoint was written when state is not None)
    evaluations: int = 0
    state: LoopState | None = None  # None when Ctrl-C cut an update in half: not safe to resume from
    seconds_per_step: float = 0.0  # leaving out the steps a level that ended early skipped
    device: str = "cpu"
    final_path: Path | None = None  # final.png, with a run folder
    checkpoint_path: Path | None = None  # checkpoint.pt, when this run wrote one at its end
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # tag -> [(step, loss)], this process's


class Diverged(StyleLabError):
    """The loss became inf or nan; `result` holds the last finite image (and where it was written)."""

    def __init__(self, message: str, result: "RunResult"):
        super().__init__(message)
        self.result = result


STALLED = 10  # steps of exactly the same loss after which the run warns that the optimizer is stuck


class _Diverged(Exception):
    """Raised from the closure when the loss of the current image is not finite, before the optimizer
    changes anything: the last good image and optimizer state are the ones kept."""


def run(
    parts: Parts,
    folder: Path | None = None,
    *,
    pictures: dict | None = None,
    resume: bool = False,
    start_over: bool = False,
    observers: Sequence[Observer] = (),
    stop: Callable[[], str | None] | None = None,
    varying: Mapping[str, str] = MappingProxyType({}),
    notes: dict[str, str] | None = None,
    weights: Any = None,
) -> RunResult:
    """Run `parts`; with `folder`, write final.png, TensorBoard events, step PNGs and checkpoint.pt there.

    resume: go on from the checkpoint in `folder`. start_over: `folder` holds an earlier attempt without a
    checkpoint, whose TensorBoard events are dropped. stop(): asked before every update; a reason ends the
    run between two updates (the command line passes its StopSignals.reason; without it, the run catches
    Ctrl-C itself). varying: the settings the run's sweep varies, as typed (HParams shows them first, so).
    notes: text for TensorBoard's Text tab (the command line, its overrides, the resolved config), logged at
    the run's first step. weights: the network's, loaded already (parts.model.load(); a clip's frames share them).
    Raises Diverged (the last finite image and its checkpoint written) when the loss becomes inf or nan. A run
    folder is locked while the run works in it (stylelab.io.lock): another process is refused."""
    if folder is None:
        return _run(parts, None, pictures, resume, start_over, observers, stop, varying, notes, weights)
    folder, made = Path(folder), not Path(folder).exists()
    lock.hold(folder)
    try:
        return _run(parts, folder, pictures, resume, start_over, observers, stop, varying, notes, weights)
    finally:
        lock.release(folder)
        if made and {p.name for p in folder.iterdir()} <= {lock.FILE}:  # refused before it wrote anything
            shutil.rmtree(folder, ignore_errors=True)


@dataclass
class _Setup:
    """What a run has read before its first step."""

    parts: Parts
    folder: Path | None
    device: torch.device
    inputs: levels.Pictures  # the content, styles and masks, read at full size
    network_weights: Any  # models.formats.Weights: the network's parameters and the balance they call for
    network: Any  # models.vgg's extractor of the objective's layers
    fingerprint: dict  # what a checkpoint must match to be resumed here
    start: checkpoint.Checkpoint | None  # the checkpoint a resumed run goes on from


@dataclass
class _Now:
    """Where the run stands: what one level hands on to the next, and the end to the picture."""

    state: LoopState  # the last state a checkpoint could hold (a level's end, or the checkpoint resumed)
    balanced: dict[str, float]  # term and layer weights a balance chose (loss.beta null)
    seconds: float  # optimisation time before this process
    step: int = 0
    x: torch.Tensor | None = None  # the image being optimised, (1, 3, h, w)
    final: Evaluation | None = None  # the losses of the last level's last image
    evaluations: int = 0
    skipped: int = 0  # steps that levels a tolerance ended early did not take
    stopped: str | None = None
    interrupted: bool = False
    whole: bool = True  # False when a second Ctrl-C cut an update in half
    diverged: str | None = None
    last_good: tuple | None = None  # (image, LoopState) at the start of the current update
    clock: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return self.seconds + time.perf_counter() - self.clock


def _run(parts: Parts, folder, pictures, resume, start_over, observers, stop, varying, notes, weights) -> RunResult:
    run = _setup(parts, folder, pictures, resume, weights)
    bar, curves, watchers = _watchers(run, start_over, notes, observers, varying)
    state = run.start.state if run.start else LoopState()
    # term weights left to the network's balance (loss.beta null): from the checkpoint, or set at level 0
    now = _Now(state, dict(state.balanced), state.seconds, step=state.step)
    balancing.restore(parts.objective, now.balanced)
    signals = StopSignals() if stop is None else contextlib.nullcontext()
    with signals:
        stop = stop or signals.reason
        try:
            for k, level in enumerate(parts.levels):
                if k < now.state.level:
                    continue  # resumed in a later level
                _level(run, now, k, level, watchers, stop)
                if now.interrupted or k == len(parts.levels) - 1 or _stopped_between(parts, now, k, stop):
                    break
        except KeyboardInterrupt:  # a second Ctrl-C while stopping: now, without a checkpoint
            now.interrupted, now.stopped, now.whole = True, f"interrupted after {now.step} steps", False
        except _Diverged as exc:
            now.diverged = str(exc)
            now.x, now.state = now.last_good if now.last_good else (now.x, None)
            now.step = now.state.step if now.state else 0
        finally:
            bar.close()  # before anything else is printed
    return _finish(run, now, now.elapsed(), curves, watchers)


def _setup(parts: Parts, folder: Path | None, pictures, resume: bool, weights=None) -> _Setup:
    """Every file read, once: the pictures (downloaded first), the network, and the checkpoint to resume."""
    device = backend.resolve_device(parts.device)
    backend.configure(device, tf32=parts.tf32)
    torch.manual_seed(parts.seed)
    levels.fetch(parts.inputs, parts.model, pictures, progress=parts.watch.progress)
    inputs = levels.read_pictures(parts.inputs, parts.colour, pictures)
    tight = memory.for_run(parts, inputs, device)  # before anything heavy: refused if it cannot fit
    if tight:
        warnings.warn(tight, stacklevel=3)
    network_weights = weights or parts.model.load(seed=parts.seed, progress=parts.watch.progress)
    network = parts.model.extractor(parts.objective.layers, network_weights, device)
    fingerprint = checkpoint.fingerprint(parts.settings, inputs.original, inputs.styles, inputs.masks)
    start = None
    if resume:
        if folder is None:
            raise StyleLabError("resume needs a run folder to continue in")
        start = checkpoint.load(folder, fingerprint)
        checkpoint.check_fits(start, parts.levels, inputs.size_of)
        start.restore_rng()
        log.info(f"resuming {folder} at step {start.state.step}")
    return _Setup(parts, folder, device, inputs, network_weights, network, fingerprint, start)


def _watchers(run: _Setup, start_over: bool, notes, observers, varying) -> tuple[Progress, Curves, list[Observer]]:
    """The progress bar, the curves RunResult returns, and with a folder TensorBoard and step PNGs; then the
    caller's. They watch, they never steer."""
    watch, last, start = run.parts.watch, run.parts.levels[-1].last, run.start
    at = start.state.step if start else 0
    bar, curves = Progress(last, initial=at, disable=not watch.progress), Curves()
    watchers: list[Observer] = [bar, curves]
    if run.folder is not None:
        # purge_step: TensorBoard drops what a stopped run logged from this step on, so no step is doubled
        tb = TensorBoard(
            run.folder,
            steps=last,
            every=watch.log_every,
            image_every=watch.image_every,
            purge_step=at if start else (0 if start_over else None),
            varying=varying,
        )
        watchers += [tb, SaveEvery(run.folder, watch.save_every)]
        if notes:
            tb.notes(at, notes)
    return bar, curves, [*watchers, *observers]


def _level(run: _Setup, now: _Now, k: int, level, watchers: list[Observer], stop) -> None:
    """Level k: its images and targets, its start image and optimizer, its steps, the losses at its end."""
    parts, objective = run.parts, run.parts.objective
    resumed = run.start if run.start is not None and k == run.start.state.level else None
    # level 0's targets from the network as built (as they always were), the rest from it as the run uses it
    features = backend.fast(run.network, parts.channels_last, parts.compile) if k > 0 else run.network
    rule = balancing.rule_for(run.network_weights)
    if None in objective.weights.values() and level is not parts.levels[-1]:
        # coarse to fine is balanced at its final size: its last level optimises a single run's objective there
        last = levels.prepare(parts.levels[-1], run.inputs, features, objective, parts.model, parts.inputs, run.device)
        now.balanced = balancing.balance(objective, rule, features, last.content)
    images_k = levels.prepare(level, run.inputs, features, objective, parts.model, parts.inputs, run.device)
    features = backend.fast(run.network, parts.channels_last, parts.compile)
    if None in objective.weights.values():  # one level, before its first step
        now.balanced = balancing.balance(objective, rule, features, images_k.content)
    if resumed:
        x = resumed.image.to(run.device)
    elif now.x is None:
        x = parts.init(images_k.content, images_k.styles[0], seed=parts.seed)
    else:  # the last level's result, upsampled
        x = images.resize_to(now.x[0].detach().cpu(), tuple(images_k.content.shape[-2:]))[None].to(run.device)
    now.x = x = x.detach().clone().requires_grad_(True)
    opt = parts.optimizer([x])
    if resumed and resumed.state.optimizer:
        opt.load_state_dict(resumed.state.optimizer)
    now.step = resumed.state.step if resumed else level.first
    for w in watchers:
        w.on_level(k, level, images_k, now.step)
        w.on_image(now.step, x.detach())
    previous = _steps(
        run, now, k, level, opt, features, watchers, stop, resumed.state.previous_loss if resumed else math.inf
    )
    with torch.no_grad():  # the level's end: the losses of its last image, at its size
        objective.start_step(now.step)
        seen = parts.colour.seen(x)
        now.final = objective(features(seen), seen).detached()
    if not math.isfinite(float(now.final.total)):
        raise _Diverged(f"the loss became {float(now.final.total)} at step {now.step}")
    for w in watchers:
        w.on_level_end(k, level, now.step, now.final, x.detach())
    now.state = _state(now, opt.state_dict(), previous, k)


def _steps(
    run: _Setup, now: _Now, k: int, level, opt, features, watchers: list[Observer], stop, previous: float
) -> float:
    """Update the image until the level's last step, a tolerance or a stop; returns the last total."""
    parts, objective, x = run.parts, run.parts.objective, now.x
    this_step: list[Evaluation] = []  # the evaluations of the current update; the first is at x

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        seen = parts.colour.seen(x)  # (1, 3, h, w): colour=luminance sees Y only
        evaluation = objective(features(seen), seen)
        if not this_step:
            total = float(evaluation.total.detach())  # one sync per step: the progress bar shows it anyway
            if not math.isfinite(total):
                raise _Diverged(f"the loss became {total} at step {now.step}")
            # what a checkpoint holds now, before the update changes it: kept if the next diverges
            now.last_good = (x.detach().clone(), _state(now, optim.snapshot(opt.state_dict()), previous, k))
        evaluation.total.backward()
        this_step.append(evaluation.detached())
        return evaluation.total

    same = 0  # steps in a row whose loss is exactly the one before
    while now.step < level.last:
        reason = stop()
        if reason:
            now.interrupted, now.stopped = True, f"{reason} after {now.step} steps"
            break
        this_step.clear()
        objective.start_step(now.step)  # terms that draw random numbers draw step's
        opt.step(closure)
        now.evaluations += len(this_step)
        losses = this_step[0]  # the losses of the image before this update
        for w in watchers:
            w.on_losses(now.step, losses)
        now.step += 1
        for w in watchers:
            w.on_image(now.step, x.detach())
        now.stopped = optim.tolerance_reached(now.step, losses.total, x.grad, previous, parts.optimizer)
        if now.stopped:
            break
        total = float(losses.total)  # read once: on CUDA each read is a device sync
        same = same + 1 if total == previous and previous != 0 else 0
        if same == STALLED:  # the optimizer no longer moves the image: say so once, go on
            warnings.warn(
                f"the loss has not changed for {STALLED} steps (step {now.step}): the optimizer is stuck "
                "(optimizer=adam, or another init, may help)",
                stacklevel=4,
            )
        previous = total
        if run.folder is not None and parts.checkpoint_every > 0 and now.step % parts.checkpoint_every == 0:
            checkpoint.save(
                run.folder / checkpoint.FILE, x.detach(), _state(now, opt.state_dict(), previous, k), run.fingerprint
            )
    return previous


def _state(now: _Now, optimizer: dict, previous: float, k: int) -> LoopState:
    """What a checkpoint holds at this point of level k: its step, the optimizer's state, the last total."""
    return LoopState(
        step=now.step,
        optimizer=optimizer,
        previous_loss=previous,
        seconds=now.elapsed(),
        level=k,
        balanced=now.balanced,
    )


def _stopped_between(parts: Parts, now: _Now, k: int, stop) -> bool:
    """After level k (not the last): hand on to the next, unless a signal came (the checkpoint is then this
    level's end, which resumes exactly)."""
    if now.stopped:  # a tolerance ended this level early: the finer ones still have their steps
        log.info(
            f"level {k + 1} ({parts.levels[k].size} px) {now.stopped}; level {k + 2} starts at step "
            f"{parts.levels[k + 1].first}"
        )
        now.skipped += parts.levels[k].last - now.step
        now.stopped = None
    reason = stop()
    if reason:
        now.interrupted, now.stopped = True, f"{reason} after {now.step} steps"
    return bool(reason)


def _finish(run: _Setup, now: _Now, seconds: float, curves: Curves, watchers: list[Observer]) -> RunResult:
    """The picture, what the run leaves in its folder, and the observers told; Diverged raised if it did."""
    parts, folder, state = run.parts, run.folder, None
    if now.state and now.whole:
        state = replace(now.state, seconds=seconds, balanced=now.balanced)
    optimised = now.x.detach()
    picture = parts.colour.finish(
        optimised, images.resize_to(run.inputs.original, optimised.shape[-2:])[None].to(optimised.device)
    )
    per_step = seconds / max(now.step - now.skipped, 1)  # the steps a level skipped took no time
    result = RunResult(
        picture,
        now.step,
        None if now.diverged else now.final,
        seconds,
        now.stopped,
        now.interrupted,
        now.evaluations,
        state,
        per_step,
        run.device.type,
        curves=curves.values,
    )
    if folder is not None:
        if (now.interrupted or now.diverged) and state:
            result.checkpoint_path = checkpoint.save(folder / checkpoint.FILE, optimised, state, run.fingerprint)
        if state or not now.diverged:
            result.final_path = images.save_image(picture, folder / "final.png")
    end = RunEnd(
        now.step,
        parts.settings_with(now.balanced),
        result.final,
        picture,
        picture is not optimised,
        per_step,
        now.diverged,
    )
    for w in watchers:
        w.on_run_end(end)
    for w in watchers:
        w.close()
    if now.diverged:
        kept = (
            f"; final.png and {checkpoint.FILE} hold step {now.step}, the last image whose loss was finite"
            if state and folder
            else ""
        )
        raise Diverged(
            f"{now.diverged}, so the optimisation diverged (a smaller optimizer.lr or smaller loss weights "
            f"may help){kept}",
            result,
        )
    return result

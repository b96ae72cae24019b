"""One run, top to bottom: read the inputs, load the network, then for each level prepare its images and
targets and step until it is done; checkpoint and stop where that happens; write the picture.

Observers (TensorBoard, the progress bar, step PNGs) are told what happens and never steer. Library code:
this module returns what happened and raises StyleLabError; it prints nothing (its few notes go to the
`stylelab` logger) and never exits.

Step numbering: "step s" is the image after s optimizer updates, counted on across the levels. Step 0 is
the initial image; the losses logged at step s are those of that image (L-BFGS evaluates them at the start
of update s+1), and after a level's last update one more forward pass gives the losses of its last image.
At the step where one level hands over to the next, both are logged: the last image and losses of the
coarse level at its size, then the first of the fine level at its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import torch

from stylelab import backend, checkpoint, levels, memory
from stylelab.signals import StopSignals
from stylelab.build import Parts
from stylelab.checkpoint import LoopState
from stylelab.errors import NotDownloaded, StyleLabError
from stylelab.io import images, lock, samples
from stylelab.losses.base import Evaluation
from stylelab.observers import Curves, Observer, Progress, SaveEvery, TensorBoard

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
    # every step's losses by TensorBoard tag, [(step, value), ...] (this process's steps only, when resumed)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


class Diverged(StyleLabError):
    """The loss became inf or nan; `result` holds the last finite image (and where it was written)."""

    def __init__(self, message: str, result: "RunResult"):
        super().__init__(message)
        self.result = result


STALLED = 10  # steps of exactly the same loss after which the run warns that the optimizer is stuck


class _Diverged(Exception):
    """Raised from the closure when the loss of the current image is not finite, before the optimizer
    changes anything: the last good image and optimizer state are the ones kept."""


def run(parts: Parts, folder: Path | None = None, *, pictures: dict | None = None, resume: bool = False,
        start_over: bool = False, observers: Sequence[Observer] = (), stop: Callable[[], str | None] | None = None,
        varying: Mapping[str, str] = MappingProxyType({}), notes: dict[str, str] | None = None) -> RunResult:
    """Run `parts`; with `folder`, write final.png, TensorBoard events, step PNGs and checkpoint.pt there.

    resume: go on from the checkpoint in `folder`. start_over: `folder` holds an earlier attempt without a
    checkpoint, whose TensorBoard events are dropped. stop(): asked before every update; a reason ends the
    run between two updates (the command line passes its StopSignals.reason; without it, the run catches
    Ctrl-C itself). varying: the settings the run's sweep varies, as typed (HParams shows them first, so).
    notes: text for TensorBoard's Text tab (the command line, its overrides, the resolved config), logged at
    the run's first step.
    Raises Diverged, after writing the last finite image and its checkpoint, when the loss becomes inf or nan.
    A run folder is locked while the run works in it (stylelab.io.lock): another process is refused.
    """
    if folder is None:
        return _run(parts, None, pictures, resume, start_over, observers, stop, varying, notes)
    folder, made = Path(folder), not Path(folder).exists()
    lock.hold(folder)
    try:
        return _run(parts, folder, pictures, resume, start_over, observers, stop, varying, notes)
    finally:
        lock.release(folder)
        if made and {p.name for p in folder.iterdir()} <= {lock.FILE}:  # refused before it wrote anything
            shutil.rmtree(folder, ignore_errors=True)


def _run(parts: Parts, folder: Path | None, pictures, resume, start_over, observers, stop, varying, notes) -> RunResult:
    # ---- inputs and network: build checked every setting; every file is read here, once
    watch = parts.watch
    device = backend.resolve_device(parts.device)
    backend.configure(device, tf32=parts.tf32)
    torch.manual_seed(parts.seed)
    # every download first, so that offline the one message names every missing file
    given = pictures or {}
    wanted = [*([] if "content" in given else [parts.inputs.content]), *([] if "style" in given else parts.inputs.styles)]
    missing = samples.fetch_all(wanted, progress=watch.progress) + parts.model.download(progress=watch.progress)
    if missing:
        raise NotDownloaded(missing)
    read = levels.read(parts.inputs, parts.colour, pictures)
    tight = memory.for_run(parts, read, device)  # before anything heavy: refused if it cannot fit
    if tight:
        warnings.warn(tight, stacklevel=2)
    weights = parts.model.load(seed=parts.seed, progress=watch.progress)
    network = parts.model.extractor(parts.objective.layers, weights, device)
    fingerprint = checkpoint.fingerprint(parts.settings, read.original, read.styles, read.masks)
    start = None
    if resume:
        if folder is None:
            raise StyleLabError("resume needs a run folder to continue in")
        start = checkpoint.load(folder, fingerprint)
        _check_resumable(start, parts, read)
        start.restore_rng()
        log.info(f"resuming {folder} at step {start.state.step}")

    # ---- observers: they watch, they never steer
    objective, ladder, optimizer = parts.objective, parts.levels, parts.optimizer
    bar = Progress(ladder[-1].last, initial=start.state.step if start else 0, disable=not watch.progress)
    curves = Curves()
    watchers: list[Observer] = [bar, curves]
    tb = None
    if folder is not None:
        # purge_step: TensorBoard drops what a stopped run logged from this step on, so no step is doubled
        tb = TensorBoard(folder, steps=ladder[-1].last, every=watch.log_every, image_every=watch.image_every,
                         purge_step=start.state.step if start else (0 if start_over else None))
        watchers += [tb, SaveEvery(folder, watch.save_every)]
        if notes:
            tb.notes(start.state.step if start else 0, notes)
    watchers += list(observers)
    signals = StopSignals() if stop is None else contextlib.nullcontext()

    # ---- the levels, and their steps
    state = start.state if start else LoopState()
    # term weights left to the network's balance (loss.beta null): from the checkpoint, or set at level 0
    balanced = dict(state.weights)
    restore(objective, balanced)
    x: torch.Tensor | None = None  # the image being optimised, (1, 3, h, w)
    stopped = diverged = final = last_good = None
    interrupted, whole, evaluations, skipped, step = False, True, 0, 0, state.step
    clock, seconds = time.perf_counter(), state.seconds
    with signals:
        stop = stop or signals.reason
        try:
            for k, level in enumerate(ladder):
                if k < state.level:
                    continue  # resumed in a later level
                resuming = start is not None and k == start.state.level
                # the level's images and every target at its size; level 0's targets come from the network
                # as it was built, as they always have, the rest from the network as the optimisation runs it
                features = fast(network, parts) if k > 0 else network
                images_k = levels.prepare(level, read, features, objective, parts.model, parts.inputs, device)
                features = fast(network, parts)
                if None in objective.weights.values():  # level 0, before the first step
                    balanced = balance(objective, weights.balance, features, images_k.content)
                if resuming:
                    x = start.image.to(device)
                elif x is None:
                    x = parts.init(images_k.content, images_k.styles[0], seed=parts.seed)
                else:  # the last level's result, upsampled
                    x = images.resize_to(x[0].detach().cpu(), tuple(images_k.content.shape[-2:]))[None].to(device)
                x = x.detach().clone().requires_grad_(True)
                opt = optimizer([x])
                if resuming and start.state.optimizer:
                    opt.load_state_dict(start.state.optimizer)
                step = start.state.step if resuming else level.first
                previous = start.state.previous_loss if resuming else math.inf
                same = 0  # steps in a row whose loss is exactly the one before
                for w in watchers:
                    w.on_level(k, level, images_k, step)
                    w.on_image(step, x.detach())
                this_step: list[Evaluation] = []  # the evaluations of the current update; the first is at x

                def closure() -> torch.Tensor:
                    nonlocal last_good
                    opt.zero_grad(set_to_none=True)
                    seen = parts.colour.seen(x)  # (1, 3, h, w): colour=luminance sees Y only
                    evaluation = objective(features(seen), seen)
                    if not this_step:
                        total = float(evaluation.total.detach())  # one sync per step: the progress bar shows it anyway
                        if not math.isfinite(total):
                            raise _Diverged(f"the loss became {total} at step {step}")
                        # what a checkpoint holds now, before the update changes it: kept if the next diverges
                        last_good = (x.detach().clone(), LoopState(step, _snapshot(opt.state_dict()), previous,
                                                                   seconds + time.perf_counter() - clock, k, balanced))
                    evaluation.total.backward()
                    this_step.append(evaluation.detached())
                    return evaluation.total

                while step < level.last:
                    reason = stop()
                    if reason:
                        interrupted, stopped = True, f"{reason} after {step} steps"
                        break
                    this_step.clear()
                    objective.start_step(step)  # terms that draw random numbers draw step's
                    opt.step(closure)
                    evaluations += len(this_step)
                    losses = this_step[0]  # the losses of the image before this update
                    for w in watchers:
                        w.on_losses(step, losses)
                    step += 1
                    for w in watchers:
                        w.on_image(step, x.detach())
                    stopped = _tolerance(step, losses, x.grad, previous, optimizer)
                    if stopped:
                        break
                    total = float(losses.total)  # read once: on CUDA each read is a device sync
                    same = same + 1 if total == previous and previous != 0 else 0
                    if same == STALLED:  # the optimizer no longer moves the image: say so once, go on
                        warnings.warn(f"the loss has not changed for {STALLED} steps (step {step}): the optimizer "
                                      "is stuck (optimizer=adam, or another init, may help)", stacklevel=2)
                    previous = total
                    if folder is not None and parts.checkpoint_every > 0 and step % parts.checkpoint_every == 0:
                        elapsed = seconds + time.perf_counter() - clock
                        checkpoint.save(folder / checkpoint.FILE, x.detach(),
                                        LoopState(step, opt.state_dict(), previous, elapsed, k, balanced), fingerprint)

                # the level's end: the losses of its last image, at its size
                with torch.no_grad():
                    objective.start_step(step)
                    seen = parts.colour.seen(x)
                    final = objective(features(seen), seen).detached()
                if not math.isfinite(float(final.total)):
                    raise _Diverged(f"the loss became {float(final.total)} at step {step}")
                for w in watchers:
                    w.on_level_end(k, level, step, final, x.detach())
                state = LoopState(step, opt.state_dict(), previous, seconds + time.perf_counter() - clock, k, balanced)
                if interrupted or k == len(ladder) - 1:
                    break
                if stopped:  # a tolerance ended this level early: the finer ones still have their steps
                    log.info(f"level {k + 1} ({level.size} px) {stopped}; level {k + 2} starts at step "
                             f"{ladder[k + 1].first}")
                    skipped += level.last - step
                    stopped = None
                reason = stop()  # between two levels: the checkpoint is this level's end, which resumes exactly
                if reason:
                    interrupted, stopped = True, f"{reason} after {step} steps"
                    break
        except KeyboardInterrupt:  # a second Ctrl-C while stopping: now, without a checkpoint
            interrupted, stopped, whole = True, f"interrupted after {step} steps", False
        except _Diverged as exc:
            diverged = str(exc)
            x, state = last_good if last_good else (x, None)
            step = state.step if state else 0
        finally:
            bar.close()  # before anything else is printed
    seconds = seconds + time.perf_counter() - clock

    # ---- the picture, and what the run leaves in its folder
    if state and whole:
        state = LoopState(state.step, state.optimizer, state.previous_loss, seconds, state.level, balanced)
    else:
        state = None
    optimised = x.detach()
    picture = parts.colour.finish(optimised, images.resize_to(read.original, x.shape[-2:])[None].to(x.device))
    per_step = seconds / max(step - skipped, 1)  # the steps a level skipped took no time
    result = RunResult(picture, step, None if diverged else final, seconds, stopped, interrupted, evaluations, state,
                       per_step, device.type, curves=curves.values)
    if folder is not None:
        if (interrupted or diverged) and state:
            result.checkpoint_path = checkpoint.save(folder / checkpoint.FILE, x.detach(), state, fingerprint)
        if state or not diverged:
            result.final_path = images.save_image(picture, folder / "final.png")
        if picture is not optimised:  # a colour control made the picture from the optimised image
            tb.final(step, picture)
        shown = {**parts.settings, **_balanced_settings(parts, balanced)}
        if diverged:
            tb.failed(shown, diverged, varying)
        else:
            tb.hparams(shown, final, step, {"summary/seconds_per_step": per_step}, varying)
        tb.close()
    for w in observers:
        w.close()
    if diverged:
        kept = f"; final.png and {checkpoint.FILE} hold step {step}, the last image whose loss was finite" \
            if state and folder else ""
        raise Diverged(f"{diverged}, so the optimisation diverged (a smaller optimizer.lr or smaller loss weights may "
                       f"help){kept}", result)
    return result


def balance(objective, balance, features, content: torch.Tensor) -> dict[str, float]:
    """The weights of the style terms left null, as the network's weights call for (formats.Balance): a fixed
    beta, or beta = ratio * content(0) / style(0) from this level's targets (their values at all-zero responses,
    the weighted content terms' summed), after evening out the style layers' weights where the balance does.
    Returns what it set: {term: weight} and, for layer weights it changed, {"term/layer": w_l}."""
    with torch.no_grad():
        at_zero = objective.at_zero(features(content), content)  # {term: {layer: value}}

    def total(name: str) -> float:
        return sum(objective.terms[name].layers[layer] * value for layer, value in at_zero[name].items())

    content_at_zero = sum(objective.weights[name] * total(name) for name in objective.terms
                          if objective.targets[name] == "content" and objective.weights[name])
    out = {}
    for name in [name for name, weight in objective.weights.items() if weight is None]:
        evened = balance.layer_weights(objective.terms[name].layers, at_zero[name])
        if evened != objective.terms[name].layers:
            out.update({f"{name}/{layer}": w for layer, w in evened.items()})
        out[name] = balance.weight(content_at_zero, sum(w * at_zero[name][layer] for layer, w in evened.items()))
    restore(objective, out)
    if balance.beta is None:
        log.info(", ".join(f"the {name} weight is {w:.4g}" for name, w in out.items() if "/" not in name)
                 + f" ({balance.source})")
    return out


def restore(objective, balanced: dict[str, float]) -> None:
    """Set the weights a balance chose (a checkpoint's, or balance's own): term weights and "term/layer" ones."""
    for key, weight in balanced.items():
        name, _, layer = key.partition("/")
        if layer:
            objective.terms[name].layers[layer] = weight
        else:
            objective.weights[name] = weight


def fast(network, parts: Parts):
    """The network as the optimisation runs it: NHWC weights (so every activation is NHWC; the image stays NCHW
    for the optimizers), compiled if asked. Idempotent."""
    if parts.channels_last and not network.net[0].weight.is_contiguous(memory_format=torch.channels_last):
        network.to(memory_format=torch.channels_last)
    # (bf16 autocast was tried and dropped: its loss curve left float32's by up to 23% over 200 steps at 256 px)
    if parts.compile:
        if not hasattr(network, "_compiled"):
            network._compiled = torch.compile(network)
        return network._compiled
    return network


def _balanced_settings(parts: Parts, balanced: dict[str, float]) -> dict:
    """The weights a balance chose, under the settings they stand for (loss.beta, loss.style_weights)."""
    shown = {parts.weight_keys.get(name, name): w for name, w in balanced.items() if "/" not in name}
    for name in {key.partition("/")[0] for key in balanced if "/" in key}:
        key = parts.layer_weight_keys.get(name, f"{name}.layer_weights")
        shown[key] = [balanced[f"{name}/{layer}"] for layer in parts.objective.terms[name].layers]
    return shown


def _snapshot(state: dict) -> dict:
    """An optimizer's state_dict that the coming update cannot change: its tensors cloned, its lists copied.

    torch's Adam and SGD update their tensors in place; its L-BFGS also appends to and pops from its history
    lists, whose tensors it never changes. Copying those is a few images' worth of memory per step.
    """
    def copy(value):
        if isinstance(value, torch.Tensor):
            return value.clone()
        return list(value) if isinstance(value, list) else value

    return {"state": {key: {name: copy(v) for name, v in per_param.items()} for key, per_param in state["state"].items()},
            "param_groups": [dict(group) for group in state["param_groups"]]}


def _tolerance(step: int, losses: Evaluation, grad, previous: float, optimizer) -> str | None:
    """Why to stop after this update when the optimizer's tolerances say so (both 0 by default: never)."""
    tolerance_grad = getattr(optimizer, "tolerance_grad", 0.0)
    tolerance_change = getattr(optimizer, "tolerance_change", 0.0)
    if grad is not None and tolerance_grad > 0 and float(grad.abs().max()) <= tolerance_grad:
        return f"stopped after {step} steps: largest gradient <= optimizer.tolerance_grad={tolerance_grad}"
    if tolerance_change > 0 and abs(float(losses.total) - previous) < tolerance_change:
        return f"stopped after {step} steps: loss changed by less than optimizer.tolerance_change={tolerance_change}"
    return None


def _check_resumable(start, parts: Parts, read) -> None:
    """The checkpoint's step and image fit this run's levels."""
    ladder, k, steps = parts.levels, start.state.level, parts.levels[-1].last
    if start.state.step > steps:
        raise StyleLabError(f"cannot resume from '{start.path}': it is at step {start.state.step}, beyond steps={steps}")
    if k >= len(ladder) or not ladder[k].first <= start.state.step <= ladder[k].last:
        raise StyleLabError(f"cannot resume from '{start.path}': it is at step {start.state.step} of level {k + 1}, "
                            f"which this run's schedule does not have")
    expected = read.size_of(ladder[k].size)
    if tuple(start.image.shape[-2:]) != tuple(expected):
        raise StyleLabError(f"cannot resume from '{start.path}': its image is {start.image.shape[-1]}x"
                            f"{start.image.shape[-2]}, not {expected[1]}x{expected[0]}")


def requeued(folder: Path) -> bool:
    """A job SLURM requeued (preempted, timed out, node failure) continues from its own checkpoint."""
    restarted = os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0")
    return restarted and (folder / checkpoint.FILE).is_file()

"""The optimisation loop, top to bottom. Knows nothing of files, Hydra or TensorBoard: watchers are callbacks.

Step numbering: "step s" is the image after s optimizer updates. Step 0 is the initial image; the losses
logged at step s are those of that image (L-BFGS evaluates them at the start of update s+1), and after the
last update one extra forward pass gives the losses of the final image.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from stylelab.losses.base import Evaluation, Objective


class Callback(Protocol):
    def on_losses(self, step: int, evaluation: Evaluation) -> None: ...
    def on_image(self, step: int, image: torch.Tensor) -> None: ...


@dataclass
class LoopState:
    """Where the loop stands after `step` updates; with the image, all a checkpoint needs to go on exactly."""

    step: int = 0
    optimizer: dict = field(default_factory=dict)  # opt.state_dict(): L-BFGS's history or Adam's moments
    previous_loss: float = math.inf  # the last total, for tolerance_change
    seconds: float = 0.0  # optimisation time so far, over all the runs that led here
    level: int = 0  # coarse to fine: the level this state belongs to (the loop itself knows no levels)


@dataclass
class RunResult:
    image: torch.Tensor  # (1, 3, H, W), unclamped
    steps_done: int
    final: Evaluation | None  # the losses of the final image (None when evaluate_end was off)
    seconds: float
    stopped: str | None = None  # why the run ended before `steps`, if it did
    interrupted: bool = False
    evaluations: int = 0
    state: LoopState | None = None  # None when Ctrl-C cut an update in half: not safe to resume from


def optimize(
    image: torch.Tensor,
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    objective: Objective,
    *,
    steps: int,
    optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    callbacks=(),
    state: LoopState | None = None,
    on_state: Callable[[torch.Tensor, LoopState], None] | None = None,
    stop: Callable[[], str | None] | None = None,
    announce_start: bool = True,
    evaluate_end: bool = True,
) -> RunResult:
    """Optimise `image` (1, 3, H, W) until step `steps` to minimise objective(features(x), x).

    `optimizer` makes the torch optimizer from the parameters (stylelab.optim). To resume, pass a
    checkpoint's image and `state`: the loop goes on at state.step as if it had never stopped (a new
    level of a coarse-to-fine run passes a fresh state at its first step). on_state(image, state) is
    called after every update (checkpoints); stop() is asked before every update and ends the run between
    two updates when it returns a reason (signals). announce_start: show the callbacks the starting image
    (a level that continues the last one's result leaves it out: that image was shown as the last one's).
    evaluate_end: evaluate the final image and show its losses (a level that a next one follows leaves it
    out: the next level's first evaluation is that step's).
    """
    resumed = state or LoopState()
    x = image.detach().clone().requires_grad_(True)
    opt = optimizer([x])
    if resumed.optimizer:
        opt.load_state_dict(resumed.optimizer)
    evaluations: list[Evaluation] = []  # this step's evaluations; the first is at the current image

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        evaluation = objective(features(x), x)
        evaluation.total.backward()
        evaluations.append(evaluation.detached())
        return evaluation.total

    if announce_start:
        for cb in callbacks:
            cb.on_image(resumed.step, x.detach())

    start = time.perf_counter()
    n_evals, step, stopped, interrupted, previous = 0, resumed.step, None, False, resumed.previous_loss
    whole = True  # False once an update may have been cut in half
    try:
        while step < steps:
            reason = stop() if stop else None
            if reason:
                interrupted, stopped = True, f"{reason} after {step} steps"
                break
            evaluations.clear()
            objective.start_step(step)  # terms that draw random numbers draw step's
            opt.step(closure)
            n_evals += len(evaluations)
            losses = evaluations[0]  # losses of the image before this update
            for cb in callbacks:
                cb.on_losses(step, losses)
            step += 1
            for cb in callbacks:
                cb.on_image(step, x.detach())
            stopped = _stop_reason(step, losses, x.grad, previous, optimizer)
            if stopped:
                break
            if getattr(optimizer, "tolerance_change", 0) > 0:
                previous = float(losses.total)
            if on_state:
                seconds = resumed.seconds + time.perf_counter() - start
                on_state(x.detach(), LoopState(step, opt.state_dict(), previous, seconds, resumed.level))
    except KeyboardInterrupt:
        interrupted, stopped, whole = True, f"interrupted after {step} steps", False

    final = None
    if evaluate_end or interrupted or stopped:
        with torch.no_grad():
            objective.start_step(step)
            final = objective(features(x), x).detached()
        for cb in callbacks:
            cb.on_losses(step, final)
    seconds = resumed.seconds + time.perf_counter() - start
    last = LoopState(step, opt.state_dict(), previous, seconds, resumed.level) if whole else None
    return RunResult(x.detach(), step, final, seconds, stopped, interrupted, n_evals, last)


def _stop_reason(step: int, losses: Evaluation, grad, previous: float, optimizer) -> str | None:
    tolerance_grad = getattr(optimizer, "tolerance_grad", 0.0)
    tolerance_change = getattr(optimizer, "tolerance_change", 0.0)
    # reading the loss syncs a GPU, so only where the optimizer reads it anyway or a tolerance needs it
    total = float(losses.total) if (getattr(optimizer, "reads_loss", False) or tolerance_change > 0) else None
    if total is not None and not math.isfinite(total):
        return f"stopped after {step} steps: the loss became {total}"
    if grad is not None and tolerance_grad > 0 and float(grad.abs().max()) <= tolerance_grad:
        return f"stopped after {step} steps: largest gradient <= optimizer.tolerance_grad={tolerance_grad}"
    if tolerance_change > 0 and abs(total - previous) < tolerance_change:
        return f"stopped after {step} steps: loss changed by less than optimizer.tolerance_change={tolerance_change}"
    return None

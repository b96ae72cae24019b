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

from stylelab.errors import StyleLabError
from stylelab.losses import LossTerms


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "lbfgs"  # lbfgs | adam
    lr: float = 1.0
    history_size: int = 100  # L-BFGS only
    line_search: str | None = None  # L-BFGS only: None (one evaluation per step) or "strong_wolfe"
    # torch's LBFGS silently stops on its own tolerances; we pass it zeros and apply these ourselves,
    # so that an early stop is always reported. 0 disables a test.
    tolerance_grad: float = 0.0
    tolerance_change: float = 0.0


def make_optimizer(params, spec: OptimizerSpec) -> torch.optim.Optimizer:
    if spec.name == "lbfgs":
        return torch.optim.LBFGS(
            params,
            lr=spec.lr,
            max_iter=1,  # one optimizer iteration per step, so every step can be logged
            history_size=spec.history_size,
            line_search_fn=spec.line_search,
            tolerance_grad=-1.0,  # never stop inside torch; see OptimizerSpec
            tolerance_change=-1.0,
        )
    if spec.name == "adam":
        return torch.optim.Adam(params, lr=spec.lr)
    raise StyleLabError(f"unknown optimizer {spec.name!r}; choose lbfgs or adam")


class Callback(Protocol):
    def on_losses(self, step: int, terms: LossTerms) -> None: ...
    def on_image(self, step: int, image: torch.Tensor) -> None: ...


@dataclass
class LoopState:
    """Where the loop stands after `step` updates; with the image, all a checkpoint needs to go on exactly."""

    step: int = 0
    optimizer: dict = field(default_factory=dict)  # opt.state_dict(): L-BFGS's history or Adam's moments
    previous_loss: float = math.inf  # the last total, for optimizer.tolerance_change
    seconds: float = 0.0  # optimisation time so far, over all the runs that led here


@dataclass
class RunResult:
    image: torch.Tensor  # (1, 3, H, W), unclamped
    steps_done: int
    final: LossTerms
    seconds: float
    stopped: str | None = None  # why the run ended before `steps`, if it did
    interrupted: bool = False
    evaluations: int = 0
    optimizer_state: dict = field(default_factory=dict)
    state: LoopState | None = None  # None when Ctrl-C cut an update in half: not safe to resume from


def optimize(
    image: torch.Tensor,
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    loss: Callable[[dict[str, torch.Tensor], torch.Tensor], LossTerms],
    *,
    steps: int,
    optimizer: OptimizerSpec = OptimizerSpec(),
    callbacks=(),
    state: LoopState | None = None,
    on_state: Callable[[torch.Tensor, LoopState], None] | None = None,
    stop: Callable[[], str | None] | None = None,
) -> RunResult:
    """Optimise `image` (1, 3, H, W) for `steps` updates to minimise loss(features(x), x).

    To resume, pass a checkpoint's image and `state`: the loop goes on at state.step as if it had never
    stopped. on_state(image, state) is called after every update (checkpoints); stop() is asked before
    every update and ends the run between two updates when it returns a reason (signals).
    """
    resumed = state or LoopState()
    x = image.detach().clone().requires_grad_(True)
    opt = make_optimizer([x], optimizer)
    if resumed.optimizer:
        opt.load_state_dict(resumed.optimizer)
    evaluations: list[LossTerms] = []  # this step's evaluations; the first is at the current image

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        terms = loss(features(x), x)
        terms.total.backward()
        evaluations.append(terms.detached())
        return terms.total

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
            opt.step(closure)
            n_evals += len(evaluations)
            terms = evaluations[0]  # losses of the image before this update
            for cb in callbacks:
                cb.on_losses(step, terms)
            step += 1
            for cb in callbacks:
                cb.on_image(step, x.detach())
            stopped = _stop_reason(step, terms, x.grad, previous, optimizer)
            if stopped:
                break
            previous = float(terms.total) if optimizer.tolerance_change > 0 else previous
            if on_state:
                on_state(x.detach(), LoopState(step, opt.state_dict(), previous, resumed.seconds + time.perf_counter() - start))
    except KeyboardInterrupt:
        interrupted, stopped, whole = True, f"interrupted after {step} steps", False

    with torch.no_grad():
        final = loss(features(x), x).detached()
    for cb in callbacks:
        cb.on_losses(step, final)
    seconds = resumed.seconds + time.perf_counter() - start
    last = LoopState(step, opt.state_dict(), previous, seconds) if whole else None
    return RunResult(x.detach(), step, final, seconds, stopped, interrupted, n_evals, opt.state_dict(), last)


def _stop_reason(step, terms: LossTerms, grad, previous: float, spec: OptimizerSpec) -> str | None:
    total = float(terms.total) if (spec.name == "lbfgs" or spec.tolerance_change > 0) else None
    if total is not None and not math.isfinite(total):
        return f"stopped after {step} steps: the loss became {total}"
    if grad is not None and spec.tolerance_grad > 0 and float(grad.abs().max()) <= spec.tolerance_grad:
        return f"stopped after {step} steps: largest gradient <= optimizer.tolerance_grad={spec.tolerance_grad}"
    if spec.tolerance_change > 0 and abs(total - previous) < spec.tolerance_change:
        return f"stopped after {step} steps: loss changed by less than optimizer.tolerance_change={spec.tolerance_change}"
    return None


def initial_image(
    kind: str,
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    seed: int = 0,
    image: torch.Tensor | None = None,
) -> torch.Tensor:
    """The starting point, (1, 3, H, W) at the content's size: noise | content | style | image."""
    if kind == "noise":
        # white noise, uniform in [0, 1], seeded on CPU so every device starts from the same image
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen).to(content.device)
    if kind == "content":
        return content.clone()
    if kind == "style":
        return style.clone()
    if kind == "image":
        if image is None:
            raise StyleLabError("init=image needs init.path=<an image file>")
        return image.clone()
    raise StyleLabError(f"unknown init {kind!r}; choose noise, content, style or image")

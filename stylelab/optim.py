"""Optimizers as the loop uses them: an object that, called with the image as parameters, makes the torch
optimizer. Any callable of that shape works (a config with `_target_: torch.optim.SGD` and `_partial_: true`
is one); the attributes below are optional and read with their defaults by the loop.

    tolerance_grad    stop once the largest gradient is at most this (0: never)
    tolerance_change  stop once the loss changes by less than this between two steps (0: never)

    lbfgs        stylelab's L-BFGS (ScaleFreeLBFGS): torch's, made independent of the loss's scale
    lbfgs_torch  torch's L-BFGS exactly (torch.optim.LBFGS), with or without its strong-Wolfe line search
    adam         torch's Adam
"""

from __future__ import annotations

import math

import torch

from stylelab.choices import LineSearch
from stylelab.errors import StyleLabError


def _check(name: str, value: float, low: float, strict: bool) -> None:
    if not math.isfinite(value):
        raise StyleLabError(f"optimizer.{name} must be a finite number, not {value}")
    if not (value > low if strict else value >= low):
        raise StyleLabError(f"optimizer.{name} must be {'>' if strict else '>='} {low:g}, not {value}")


class ScaleFreeLBFGS(torch.optim.Optimizer):
    """L-BFGS on one tensor (the image), one loss evaluation per step, with no setting that depends on the
    loss's scale (stylelab's `optimizer=lbfgs`; `optimizer=lbfgs_torch` is torch's own).

    It is torch's L-BFGS (the same two-loop recursion, H0 = s'y / y'y from the newest pair, a step of lr along
    the direction) with three changes, each for a way torch's stalls on losses of 1e6 and more:
    - the first step has unit length (scipy's L-BFGS-B starts so), not 1 / |g|_1: on a loss of 1e7 torch's
      first step is 1e-8 long, too short to measure curvature above float32's rounding, so its first pair is
      dropped;
    - with no curvature pair in memory, the next step is twice the last accepted one, not lr times the raw
      gradient (a step 1e5 long, which overshoots the loss by 15 orders of magnitude);
    - a step that breaks the sufficient-decrease (Armijo) condition f(x + t d) <= f(x) + c1 t g'd is taken
      back at the next step, which evaluates there anyway: the point moves to x + t' d, t' from the
      quadratic through f(x), g'd and f(x + t d), and no curvature pair is made from the rejected point (the
      pair from a point 15 orders of magnitude up is what pins torch's H0 at 1e-13 for good); the steps
      after a shortened one start at twice its length and grow back to lr.
    A pair is kept when s'y > 1e-10 |s| |y| (positive curvature, measured without units).
    """

    C1 = 1e-4  # sufficient decrease, as in Nocedal & Wright
    SHRINK = (1e-6, 0.5)  # a rejected step's new length, as a fraction of the old

    def __init__(self, params, lr: float = 1.0, history_size: int = 100):
        super().__init__(params, {"lr": lr, "history_size": history_size})
        if len(self.param_groups) != 1 or len(self.param_groups[0]["params"]) != 1:
            raise ValueError("ScaleFreeLBFGS optimises one tensor")

    @torch.no_grad()
    def step(self, closure):
        (x,) = self.param_groups[0]["params"]
        lr, history = self.param_groups[0]["lr"], self.param_groups[0]["history_size"]
        with torch.enable_grad():
            loss_t = closure()
        loss = float(loss_t.detach())
        g = x.grad.reshape(-1)  # (P,): the flat gradient at x
        state = self.state[x]
        state["n_iter"] = state.get("n_iter", 0) + 1
        trial = lr  # the next step's length along its direction
        if state["n_iter"] == 1:
            state.update(old_dirs=[], old_stps=[], ro=[], scale=1.0 / float(g.norm()))
        else:
            d, t = state["d"], state["t"]
            if not loss <= state["prev_loss"] + self.C1 * t * state["gtd"]:  # the last step went too far
                # the minimum of the quadratic through f(0) = prev_loss, f'(0) = gtd and f(t) = loss
                curvature = loss - state["prev_loss"] - state["gtd"] * t
                shorter = -state["gtd"] * t * t / (2 * curvature) if curvature > 0 and math.isfinite(loss) else 0.0
                shorter = min(max(shorter, self.SHRINK[0] * t), self.SHRINK[1] * t)
                x.add_(d.view_as(x), alpha=shorter - t)
                state["t"] = shorter
                return loss_t
            # a step that had to be shortened says the model overshoots here: the next tries twice that length,
            # growing back to lr, instead of overshooting again at once
            trial = min(lr, 2 * t)
            y = g.sub(state["prev_flat_grad"])  # (P,)
            s = d.mul(t)  # (P,): the step just accepted
            ys = y.dot(s)
            if ys > 1e-10 * y.norm() * s.norm():
                if len(state["old_dirs"]) == history:
                    for key in ("old_dirs", "old_stps", "ro"):
                        state[key].pop(0)
                state["old_dirs"].append(y)
                state["old_stps"].append(s)
                state["ro"].append(1.0 / ys)
                state["scale"] = ys / y.dot(y)  # H0 = s'y / y'y, torch's H_diag
            elif not state["old_dirs"]:  # still no curvature: twice the step that just worked
                state["scale"] = 2 * float(s.norm()) / (lr * float(g.norm()))
        d = self._direction(g, state)
        gtd = float(g.dot(d))
        if not gtd < 0:  # the memory points uphill (it can, on a non-convex loss): forget it
            for key in ("old_dirs", "old_stps", "ro"):
                state[key].clear()
            d = g.neg().mul(state["scale"])
            gtd = float(g.dot(d))
        state.update(
            d=d, t=trial, gtd=gtd, prev_loss=loss, prev_flat_grad=g.clone(memory_format=torch.contiguous_format)
        )
        x.add_(d.view_as(x), alpha=trial)
        return loss_t

    @staticmethod
    def _direction(g: torch.Tensor, state: dict) -> torch.Tensor:
        """-H g by the two-loop recursion (torch's, with H0 = scale I)."""
        old_dirs, old_stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        al = [None] * len(old_dirs)
        q = g.neg()
        for i in range(len(old_dirs) - 1, -1, -1):
            al[i] = old_stps[i].dot(q) * ro[i]
            q.add_(old_dirs[i], alpha=-al[i])
        r = torch.mul(q, state["scale"])
        for i in range(len(old_dirs)):
            be_i = old_dirs[i].dot(r) * ro[i]
            r.add_(old_stps[i], alpha=al[i] - be_i)
        return r


class LBFGS:
    """stylelab's L-BFGS (ScaleFreeLBFGS): one loss evaluation per step, so every step can be logged, and
    no step length that depends on the loss's scale. The loop applies tolerance_grad and tolerance_change
    itself, reporting why it stopped."""

    def __init__(
        self, lr: float = 1.0, history_size: int = 100, tolerance_grad: float = 0.0, tolerance_change: float = 0.0
    ):
        _check("lr", lr, 0, strict=True)
        _check("history_size", history_size, 1, strict=False)
        _check("tolerance_grad", tolerance_grad, 0, strict=False)
        _check("tolerance_change", tolerance_change, 0, strict=False)
        self.lr, self.history_size = float(lr), int(history_size)
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)

    def __call__(self, params) -> torch.optim.Optimizer:
        return ScaleFreeLBFGS(params, lr=self.lr, history_size=self.history_size)


class TorchLBFGS(LBFGS):
    """torch's L-BFGS exactly (`optimizer=lbfgs_torch`), one iteration per step: one loss evaluation, or more
    with its strong-Wolfe line search. Its first step is 1 / |g|_1 long and, without a curvature pair, a step is
    lr times the gradient: on the large losses of Caffe-input networks that can overshoot and stall (see
    ScaleFreeLBFGS). torch's own tolerances would end a run silently; they are switched off and the loop
    applies tolerance_grad and tolerance_change itself, reporting why it stopped.
    """

    def __init__(
        self,
        lr: float = 1.0,
        history_size: int = 100,
        line_search: LineSearch | None = None,
        tolerance_grad: float = 0.0,
        tolerance_change: float = 0.0,
    ):
        super().__init__(lr, history_size, tolerance_grad, tolerance_change)
        self.line_search = None if line_search is None else str(line_search)  # None: one evaluation per step

    def __call__(self, params) -> torch.optim.Optimizer:
        return torch.optim.LBFGS(
            params,
            lr=self.lr,
            max_iter=1,
            history_size=self.history_size,
            line_search_fn=self.line_search,
            tolerance_grad=-1.0,
            tolerance_change=-1.0,
        )


class Adam:
    """torch's Adam on the pixels."""

    def __init__(self, lr: float = 0.02, tolerance_grad: float = 0.0, tolerance_change: float = 0.0):
        _check("lr", lr, 0, strict=True)
        _check("tolerance_grad", tolerance_grad, 0, strict=False)
        _check("tolerance_change", tolerance_change, 0, strict=False)
        self.lr = float(lr)
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)

    def __call__(self, params) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.lr)


# ---------------------------------------------------------------- what the loop asks of any optimizer


def snapshot(state: dict) -> dict:
    """An optimizer's state_dict that the coming update cannot change: its tensors cloned, its lists copied.

    torch's Adam and SGD update their tensors in place; its L-BFGS also appends to and pops from its history
    lists, whose tensors it never changes. Copying those is a few images' worth of memory per step.
    """

    def copy(value):
        if isinstance(value, torch.Tensor):
            return value.clone()
        return list(value) if isinstance(value, list) else value

    return {
        "state": {key: {name: copy(v) for name, v in per_param.items()} for key, per_param in state["state"].items()},
        "param_groups": [dict(group) for group in state["param_groups"]],
    }


def tolerance_reached(step: int, total: torch.Tensor, grad, previous: float, optimizer) -> str | None:
    """Why to stop after this update when the optimizer's tolerances say so (both 0 by default: never)."""
    tolerance_grad = getattr(optimizer, "tolerance_grad", 0.0)
    tolerance_change = getattr(optimizer, "tolerance_change", 0.0)
    if grad is not None and tolerance_grad > 0 and float(grad.abs().max()) <= tolerance_grad:
        return f"stopped after {step} steps: largest gradient <= optimizer.tolerance_grad={tolerance_grad}"
    if tolerance_change > 0 and abs(float(total) - previous) < tolerance_change:
        return f"stopped after {step} steps: loss changed by less than optimizer.tolerance_change={tolerance_change}"
    return None

"""Optimizers as the loop uses them: an object that, called with the image as parameters, makes the torch
optimizer. Any callable of that shape works (a config with `_target_: torch.optim.SGD` and `_partial_: true`
is one); the attributes below are optional and read with their defaults by the loop.

    reads_loss        the optimizer reads the loss value every step anyway, so checking it costs nothing
    tolerance_grad    stop once the largest gradient is at most this (0: never)
    tolerance_change  stop once the loss changes by less than this between two steps (0: never)
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


class LBFGS:
    """torch's L-BFGS with one iteration and one loss evaluation per step, so every step can be logged.

    torch's own tolerances would end a run silently; they are switched off and the loop applies
    tolerance_grad and tolerance_change itself, reporting why it stopped.
    """

    reads_loss = True

    def __init__(self, lr: float = 1.0, history_size: int = 100, line_search: LineSearch | None = None,
                 tolerance_grad: float = 0.0, tolerance_change: float = 0.0):
        _check("lr", lr, 0, strict=True)
        _check("history_size", history_size, 1, strict=False)
        _check("tolerance_grad", tolerance_grad, 0, strict=False)
        _check("tolerance_change", tolerance_change, 0, strict=False)
        self.lr, self.history_size = float(lr), int(history_size)
        self.line_search = None if line_search is None else str(line_search)  # None: one evaluation per step
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)

    def __call__(self, params) -> torch.optim.Optimizer:
        return torch.optim.LBFGS(params, lr=self.lr, max_iter=1, history_size=self.history_size,
                                 line_search_fn=self.line_search, tolerance_grad=-1.0, tolerance_change=-1.0)


class Adam:
    """torch's Adam on the pixels."""

    reads_loss = False

    def __init__(self, lr: float = 0.02, tolerance_grad: float = 0.0, tolerance_change: float = 0.0):
        _check("lr", lr, 0, strict=True)
        _check("tolerance_grad", tolerance_grad, 0, strict=False)
        _check("tolerance_change", tolerance_change, 0, strict=False)
        self.lr = float(lr)
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)

    def __call__(self, params) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.lr)

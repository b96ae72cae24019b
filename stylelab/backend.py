"""Which device a run uses and how its backend is set up (library code: plain arguments, no configs)."""

from __future__ import annotations

from typing import get_args

import torch

from stylelab.choices import Device
from stylelab.errors import StyleLabError


DEVICES: tuple[str, ...] = get_args(Device)


def resolve_device(device: str) -> torch.device:
    """auto | cpu | cuda -> a torch.device; cuda without a GPU is a user error, not a silent CPU run."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise StyleLabError("device=cuda but PyTorch sees no CUDA GPU here; use device=cpu or device=auto")
    if device not in DEVICES:
        raise StyleLabError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    return torch.device(device)


def configure(device: torch.device, *, tf32: bool) -> None:
    """CUDA only: autotuned convolutions (one input size per run), TF32 convolutions if asked.

    Matmuls (the Grams) stay full float32 whatever `tf32` says: they are the paper's numbers.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = False

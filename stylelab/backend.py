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


def fast(network, channels_last: bool, compile: bool):
    """The network as the optimisation runs it: NHWC weights (so every activation is NHWC; the image stays NCHW
    for the optimizers), compiled if asked. Idempotent."""
    if channels_last and not network.net[0].weight.is_contiguous(memory_format=torch.channels_last):
        network.to(memory_format=torch.channels_last)
    # (bf16 autocast was tried and dropped: its loss curve left float32's by up to 23% over 200 steps at 256 px)
    if compile:
        if not hasattr(network, "_compiled"):
            network._compiled = torch.compile(network)
        return network._compiled
    return network

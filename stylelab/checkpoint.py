"""Checkpoints: save, load, refuse a mismatch (stopping cleanly on signals is stylelab.signals).

A checkpoint is `<run dir>/checkpoint.pt`: the image after `step` updates, the optimizer's state (all of
L-BFGS's history), the step, the elapsed seconds, torch's RNG state and a fingerprint of every setting
that changes the result. Resuming from it continues the loop exactly: on CPU the final image is the same,
byte for byte, as that of a run that never stopped.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stylelab.errors import StyleLabError
from stylelab.io import folders
from stylelab.io.atomic import write_atomic

FILE = folders.CHECKPOINT
# 3: the objective became a list of terms, so the fingerprint names other settings than 2's did
FORMAT = "stylelab-checkpoint/3"
# What a resumed run may change besides the settings that never change the picture (config.INERT): it may
# go on for more steps; content and style are compared by their pixels, not by the path they came from.
_NOT_COMPARED = ("steps", "content", "style")


@dataclass
class LoopState:
    """Where the loop stands after `step` updates; with the image, all a checkpoint needs to go on exactly."""

    step: int = 0
    optimizer: dict = field(default_factory=dict)  # opt.state_dict(): L-BFGS's history or Adam's moments
    previous_loss: float = math.inf  # the last total, for tolerance_change
    seconds: float = 0.0  # optimisation time so far, over all the runs that led here
    level: int = 0  # coarse to fine: the level this state belongs to
    balanced: dict = field(default_factory=dict)  # term weights the run's balance set (loss.beta null)


def fingerprint(settings: dict, content: torch.Tensor, style, masks=None) -> dict:
    """What a resumed run must share with the checkpoint: every setting that changes the picture (flat
    {dotted key: plain value}, so a mismatch is named by one key, `optimizer.lr`) and the images (style
    and masks may be lists of images)."""
    flat = {key: value for key, value in settings.items() if key not in _NOT_COMPARED}
    flat["content image"] = _digest(content)
    flat["style image"] = _digest(style)
    if masks:
        flat["mask image"] = _digest(masks)
    return flat


def _digest(images) -> str:
    digest = hashlib.sha256()
    for image in images if isinstance(images, (list, tuple)) else [images]:
        if image is not None:
            digest.update(image.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Checkpoint:
    image: torch.Tensor  # (1, 3, H, W), unclamped, on the CPU
    state: LoopState
    rng: dict  # {"cpu": ByteTensor, "cuda": [ByteTensor, ...]}
    path: Path  # where it was read from

    def restore_rng(self) -> None:
        torch.set_rng_state(self.rng["cpu"])
        if self.rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.rng["cuda"])


def save(path: Path, image: torch.Tensor, state: LoopState, fingerprint: dict) -> Path:
    """Write the checkpoint atomically: a reader (or a resumed run) never sees half a file."""
    payload = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "image": image.detach().cpu(),
        "step": state.step,
        "optimizer": state.optimizer,
        "previous_loss": state.previous_loss,
        "seconds": state.seconds,
        "level": state.level,
        "balanced": dict(state.balanced),
        "rng": {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        },
    }
    buffer = io.BytesIO()  # serialise first, so a failing torch.save leaves no file at all
    torch.save(payload, buffer)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()))
    return Path(path)


def load(run_dir: Path, expected: dict) -> Checkpoint:
    """Read `run_dir/checkpoint.pt` (or a checkpoint file) and check it has the `expected` fingerprint."""
    run_dir = Path(run_dir)
    path = run_dir / FILE if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise StyleLabError(
            f"cannot resume: there is no {FILE} in '{run_dir}' (a run writes one every checkpoint_every "
            "steps and when it is stopped by SIGINT or SIGTERM)"
        )
    try:
        # weights_only: a checkpoint is data (tensors, numbers, strings), never code to run
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise StyleLabError(
            f"cannot resume from '{path}': it is not a readable checkpoint ({_first_line(exc)})"
        ) from None
    fields = ("fingerprint", "image", "step", "optimizer", "previous_loss", "seconds", "rng")
    if (
        isinstance(payload, dict)
        and str(payload.get("format", "")).startswith("stylelab-checkpoint/")
        and payload["format"] != FORMAT
    ):
        raise StyleLabError(
            f"cannot resume from '{path}': it was written by another version of stylelab "
            f"({payload['format']}, this one reads {FORMAT}), so the run has to start again"
        )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not all(k in payload for k in fields):
        raise StyleLabError(f"cannot resume from '{path}': it is not a stylelab checkpoint")
    _check_fingerprint(path, payload["fingerprint"], expected)
    image = payload["image"]
    if image.dim() != 4 or tuple(image.shape[:2]) != (1, 3):
        raise StyleLabError(f"cannot resume from '{path}': its image is {tuple(image.shape)}, not (1, 3, H, W)")
    state = LoopState(
        step=payload["step"],
        optimizer=payload["optimizer"],
        previous_loss=payload["previous_loss"],
        seconds=payload["seconds"],
        level=int(payload.get("level", 0)),
        balanced=dict(payload.get("balanced", payload.get("weights", {}))),  # "weights" before v4
    )
    return Checkpoint(image, state, payload["rng"], path)


def _check_fingerprint(path: Path, found: dict, expected: dict) -> None:
    for key in expected:
        old, new = found.get(key), expected[key]
        if old == new:
            continue
        if key.endswith("image"):
            raise StyleLabError(f"cannot resume from '{path}': it was made with another {key}")
        raise StyleLabError(
            f"cannot resume from '{path}': it was made with {key}={old!r}, but this run has {key}={new!r}"
        )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def check_fits(start: Checkpoint, ladder, size_of) -> None:
    """The checkpoint's step and image fit this run's levels (`ladder`, build.Level's; size_of(size) -> (h, w))."""
    k, steps = start.state.level, ladder[-1].last
    if start.state.step > steps:
        raise StyleLabError(
            f"cannot resume from '{start.path}': it is at step {start.state.step}, beyond steps={steps}"
        )
    if k >= len(ladder) or not ladder[k].first <= start.state.step <= ladder[k].last:
        raise StyleLabError(
            f"cannot resume from '{start.path}': it is at step {start.state.step} of level {k + 1}, "
            f"which this run's schedule does not have"
        )
    expected = size_of(ladder[k].size)
    if tuple(start.image.shape[-2:]) != tuple(expected):
        raise StyleLabError(
            f"cannot resume from '{start.path}': its image is {start.image.shape[-1]}x"
            f"{start.image.shape[-2]}, not {expected[1]}x{expected[0]}"
        )

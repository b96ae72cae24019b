"""How much memory a run will need at its peak, estimated before anything heavy runs, and what the device has.

The estimate adds up, at the run's largest level (its pixel count P, the style's P_s = P * style_scale^2 per
style), in float32 bytes:

    network     the responses the backward pass keeps: every ReLU's output (and a hooked conv's, which keeps
                its own), 4 * channels * P / 4^pools each, plus the gradients of the two largest at once;
                with model.checkpointing only the hooked layers' and the largest piece's
    targets     a forward pass of each style (and of the content) without gradient: its two largest
                consecutive responses at once, at the style's size
    images      the image, its gradient, the content and the initial image: 4 images of 3 * 4 * P bytes, and the
                optimizer's own vectors (L-BFGS: direction and last gradient; the loop's copy for a divergence)
    optimizer   L-BFGS's history, history_size pairs of images (2 * 12 * P each), copied once more while a
                checkpoint is written; Adam's two moments
    runtime     the process and the network's weights (measured: see below)

The factors were measured with benchmarks/memory.py (peak RSS on this project's CPU machine; docs/speed.md),
where the estimate is within the error quoted there. Library code: plain numbers in and out.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from stylelab.errors import StyleLabError
from stylelab.optim import LBFGS

GB = 1e9
RUNTIME = 0.75 * GB  # the Python process with torch, Hydra and TensorBoard, measured on the CPU


@dataclass
class Estimate:
    total: float  # bytes at the peak
    parts: dict[str, float] = field(default_factory=dict)  # what makes it up, by the names the messages use
    uncertain: bool = False  # parts stylelab cannot size (torch.compile, a term of the user's)

    @property
    def biggest(self) -> str:
        return max(self.parts, key=self.parts.get)


def network_bytes(profile: list[tuple[str, int, int]], hooked: set[str], pixels: float, checkpointing: bool) -> float:
    """The responses a backward pass keeps, for an image of `pixels`. profile: (layer, channels, pools before)."""
    sizes = {name: 4.0 * channels * pixels / 4**pools for name, channels, pools in profile}
    largest = max(sizes.values())
    if checkpointing:  # the outputs of the pieces between hooked layers, and one piece recomputed at a time
        pieces, piece = [], 0.0
        for name, size in sizes.items():
            if not name.startswith("conv"):
                piece += size
            if name in hooked:
                pieces.append(piece)
                piece = 0.0
        return sum(sizes[name] for name in hooked if name in sizes) + max(pieces, default=0.0) + 3 * largest
    # a ReLU's output (in place over its conv's), a hooked conv's own, a pool's; the gradients of the largest
    kept = [size for name, size in sizes.items() if not name.startswith("conv") or name in hooked]
    return sum(kept) + 3 * largest


def estimate(
    *,
    profile,
    hooked,
    pixels: float,
    style_pixels: list[float],
    optimizer: str,
    history: int,
    checkpointing: bool,
    weights_bytes: float,
    uncertain: bool = False,
) -> Estimate:
    """The peak of a run at its largest level (see the module's docstring for each part)."""
    image = 12.0 * pixels  # one RGB float32 image
    first = 4.0 * profile[0][1]  # bytes per pixel of the first block's responses
    images = 7 * image
    optimizer_bytes = 2 * (2 * history + 2) * image if optimizer == "lbfgs" else 2 * image
    network = network_bytes(profile, hooked, pixels, checkpointing)
    # the targets come first, without gradient: a forward pass at each style's size, its widest layer three times
    targets = 3 * first * max([pixels, *style_pixels])
    parts = {
        "the network's responses": network if network + optimizer_bytes >= targets else 0.0,
        "the style's responses": targets if targets > network + optimizer_bytes else 0.0,
        "the images": images,
        "L-BFGS's history" if optimizer == "lbfgs" else "the optimizer's state": optimizer_bytes,
        "the process and the weights": RUNTIME + weights_bytes,
    }
    parts = {name: size for name, size in parts.items() if size > 0}
    return Estimate(sum(parts.values()), parts, uncertain)


def available(device: torch.device) -> float:
    """Bytes this process can still take on `device`, its own included (the process's size is in the estimate)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free) + torch.cuda.memory_reserved(device)
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    free = float(meminfo["MemAvailable"].split()[0]) * 1024
    limit = _cgroup_limit()
    own = _rss()
    return min(free + own, limit) if limit else free + own


def _cgroup_limit() -> float | None:
    for path in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return float(text)
    return None


def _rss() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def check(found: Estimate, free: float, device: str, fixes: dict[str, str]) -> str | None:
    """Refuse (StyleLabError) a run that cannot fit; a one-line warning (returned) for one that may not.

    fixes: for each part, a setting that makes the run fit (found by the caller with the same estimate), and
    under "image" the image size that does.
    """
    biggest = found.biggest
    fix = fixes.get(biggest) or fixes.get("image")
    how = f"; {fix} makes it fit" if fix else "; no setting makes it fit on this machine"
    said = (
        f"this run needs about {found.total / GB:.1f} GB at its largest level and the {device} has "
        f"{free / GB:.1f} GB available; the biggest part is {biggest} ({found.parts[biggest] / GB:.1f} GB){how}"
    )
    sure = 0.7 if found.uncertain else 0.95  # the estimate's lower bound (measured within 5%: docs/speed.md)
    if found.total * sure > free:
        raise StyleLabError(said)
    if found.total > 0.8 * free:
        return said.replace("this run needs", "this run may need", 1)
    return None


# ---------------------------------------------------------------- for a run


def _weights_bytes(model) -> float:
    """The features' parameters three times (the file's tensors, the network, its NHWC copy) and a whole file
    read at once (torchvision's holds the classifier too)."""
    arch = model.arch
    channels = [3] + [c for convs, c in zip(arch.blocks, (64, 128, 256, 512, 512)) for _ in range(convs)]
    params = sum(cin * cout * 9 + cout for cin, cout in zip(channels, channels[1:]))
    path = model.weights_file()
    size = path.stat().st_size if path is not None and path.is_file() else 0
    return 3 * 4.0 * params + size


def _at(parts, pictures, device: torch.device | None = None):
    """The estimate of the run `parts` as a function of the settings a fix may change."""
    layers = parts.objective.layers
    profile = parts.model.profile(layers)
    styles = len(pictures.styles)
    optimizer = parts.optimizer
    default_kind = _kind(optimizer)
    on_cuda = device is not None and device.type == "cuda"
    uncertain = (
        parts.compile
        or on_cuda
        or type(optimizer).__module__ != "stylelab.optim"
        or any(not type(term).__module__.startswith("stylelab.") for term in parts.objective.terms.values())
    )
    weights = _weights_bytes(parts.model)

    def at(size: int, history: int, checkpointing: bool, style_scale: float, kind: str = default_kind) -> Estimate:
        h, w = pictures.size_of(size)
        style = [round(h * style_scale) * round(w * style_scale)] * styles
        return estimate(
            profile=profile,
            hooked=set(layers),
            pixels=h * w,
            style_pixels=style,
            optimizer=kind,
            history=history,
            checkpointing=checkpointing,
            weights_bytes=weights,
            uncertain=uncertain,
        )

    return at


def _kind(optimizer) -> str:
    """How the estimate sizes the optimizer's state: L-BFGS's history, or Adam's two moments for any other."""
    return "lbfgs" if isinstance(optimizer, LBFGS) else "adam"  # TorchLBFGS is an LBFGS too


def _settings(parts) -> tuple[int, int, bool, float]:
    """The largest level's size, L-BFGS's history, checkpointing and style_scale of the run `parts`."""
    size = max(level.size for level in parts.levels)
    return size, getattr(parts.optimizer, "history_size", 0), parts.model.checkpointing, parts.inputs.style_scale


def estimate_for(parts, pictures, device: torch.device | None = None) -> Estimate:
    """The peak-memory estimate of the run `parts` with its `pictures` read, as the run checks it."""
    return _at(parts, pictures, device)(*_settings(parts))


def for_run(parts, pictures, device: torch.device) -> str | None:
    """Check the run `parts` (stylelab.build.Parts) with its `pictures` read fits `device` (see check)."""
    at = _at(parts, pictures, device)
    size, history, checkpointing, scale = _settings(parts)
    kind = _kind(parts.optimizer)
    found = at(size, history, checkpointing, scale)
    free = available(device)

    def fits(e: Estimate) -> bool:  # a setting suggested makes the run fit without a warning
        return e.total <= 0.8 * free

    if fits(found):
        return None
    # for each part, the one setting that makes the run fit, if one does
    fixes = {}
    if not checkpointing and fits(at(size, history, True, scale)):
        fixes["the network's responses"] = "model.checkpointing=true"
    if kind == "lbfgs":
        shorter = _largest(lambda n: fits(at(size, n, checkpointing, scale)), 1, history)
        if shorter:
            fixes["L-BFGS's history"] = f"optimizer.history_size={shorter}"
        elif fits(at(size, 0, checkpointing, scale, "adam")):
            fixes["L-BFGS's history"] = "optimizer=adam"
    hundredths = _largest(lambda n: fits(at(size, history, checkpointing, n / 100)), 1, max(2, round(scale * 100)))
    if hundredths:
        fixes["the style's responses"] = f"style_scale={_two_digits(hundredths / 100):g}"
    smaller = _largest(lambda s: fits(at(s, history, checkpointing, scale)), 16, size)
    if smaller:
        fixes["image"] = f"image.size={smaller} (the longest side)"
    return check(found, free, str(device), fixes)


def _two_digits(x: float) -> float:
    """x rounded down to two significant digits (81.58 -> 81, 0.437 -> 0.43): a value that still fits."""
    step = 10 ** (math.floor(math.log10(x)) - 1)
    return math.floor(x / step + 1e-9) * step


def _largest(ok, low: int, high: int) -> int | None:
    """The largest n in [low, high) with ok(n), ok being true up to some n and false beyond."""
    if not ok(low):
        return None
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low

"""A synthetic clip whose motion is known exactly, for tests and benchmarks of flow and temporal consistency.

A camera pans and zooms over a photo (an affine map per frame), and a textured square (an "object") slides
across the view on top with its own velocity, uncovering the background behind it. The exact flows follow
from the affine maps and the square's velocity analytically; nothing is estimated.

Coordinates are pixel centres: x from 0 to W - 1 left to right, y from 0 to H - 1 top to bottom. Frame k's
pixel q shows the photo's point P_k(q) = C + s_k (q - c) + k * shift, with c and C the centres of the frame and
of the photo and s_k = zoom^-k (zoom > 1 magnifies the scene a little more each frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from stylelab.errors import StyleLabError
from stylelab.video.warp import warp

_TOLERANCE = 1e-6  # pixels: how far a computed position may stray from the exact one (float64 rounding)
_MIXED = 1e-6  # a bilinear read with more weight than this on another surface mixes two (above float64 rounding)


@dataclass
class SyntheticClip:
    """frames[k] is (3, h, w) in [0, 1]. For k >= 1: backward[k] = flow(frame_k, frame_{k-1}) and
    forward[k] = flow(frame_{k-1}, frame_k), (2, h, w) each, and visible[k], (1, h, w), is 1 where frame k's
    pixel was visible in frame k-1 and reading frame k-1 at p + backward[k](p) reads that surface only (0
    behind the square's earlier place, in a one-pixel rim around the square where a bilinear read mixes the
    square and the background, and where the camera brought in what was out of view). Index 0 holds None.
    squares[k], (1, h, w), is 1 on the square's pixels in frame k."""

    frames: list[torch.Tensor]
    backward: list[torch.Tensor | None]
    forward: list[torch.Tensor | None]
    visible: list[torch.Tensor | None]
    squares: list[torch.Tensor]


def noise_photo(height: int, width: int, seed: int = 0, cell: int = 32, octaves: int = 4) -> torch.Tensor:
    """A smooth colourful random texture (3, height, width) in [0, 1]: octaves of bicubically enlarged noise, the
    coarsest with cells of `cell` pixels. Structure at every scale, so that a flow method finds the motion."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, 3, height, width, dtype=torch.float64)
    for octave in range(octaves):
        size = max(cell >> octave, 2)
        low = torch.rand(1, 3, height // size + 2, width // size + 2, generator=gen, dtype=torch.float64)
        big = F.interpolate(low, scale_factor=size, mode="bicubic", align_corners=False)  # (1, 3, >= H, >= W)
        out += big[..., :height, :width] * 0.5**octave
    low, high = out.amin(dim=(2, 3), keepdim=True), out.amax(dim=(2, 3), keepdim=True)
    return ((out - low) / (high - low))[0].float()


def _grid(h: int, w: int) -> torch.Tensor:
    """Pixel centres (2, h, w) in float64: x then y."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([xs, ys])


def _sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """`image` (C, H, W) read bilinearly at `points` (2, h, w) given in its pixel coordinates -> (C, h, w)."""
    h, w = image.shape[-2:]
    gx = 2 * points[0] / max(w - 1, 1) - 1
    gy = 2 * points[1] / max(h - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1)[None]  # (1, h, w, 2)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]


def pan_and_zoom(
    photo: torch.Tensor,
    frames: int = 5,
    size: tuple[int, int] = (96, 128),
    shift: tuple[float, float] = (2.0, 1.0),
    zoom: float = 1.02,
    square: bool = True,
    *,
    velocity: tuple[float, float] = (4.0, 2.0),
    square_size: int | None = None,
    seed: int = 0,
) -> SyntheticClip:
    """`frames` frames of `size` (h, w) seen by a camera over `photo` (3, H, W): each frame the view's centre moves
    by `shift` (dx, dy) photo pixels and the view shrinks by 1 / `zoom` about its centre. With `square`, a
    textured red square of `square_size` pixels (a quarter of the smaller side by default) starts near the
    top left and moves `velocity` (dx, dy) frame pixels per frame (whole pixels keep its own warp exact)."""
    if frames < 2:
        raise StyleLabError(f"a synthetic clip needs at least 2 frames, not {frames}")
    h, w = size
    big_h, big_w = photo.shape[-2:]
    photo = photo.reshape(3, big_h, big_w).double()
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)[:, None, None]  # (2, 1, 1)
    middle = torch.tensor([(big_w - 1) / 2, (big_h - 1) / 2], dtype=torch.float64)[:, None, None]
    step = torch.tensor(shift, dtype=torch.float64)[:, None, None]
    scale = [zoom ** (-k) for k in range(frames)]
    q = _grid(h, w)  # (2, h, w)

    def camera(k: int) -> torch.Tensor:  # P_k(q), (2, h, w): where frame k's pixels lie in the photo
        return middle + scale[k] * (q - centre) + k * step

    views = [camera(k) for k in range(frames)]
    if min(float(p.amin()) for p in views) < 1 or any(
        float(p[0].amax()) > big_w - 2 or float(p[1].amax()) > big_h - 2 for p in views
    ):
        raise StyleLabError(
            f"the camera leaves the {big_w} x {big_h} photo: a {w} x {h} view moving {shift} pixels a frame for "
            f"{frames} frames needs a larger photo, a smaller view or less motion"
        )
    background = [_sample(photo, p) for p in views]  # (3, h, w) each

    def flow_between(a: int, b: int) -> torch.Tensor:  # the camera's flow from frame a to frame b, (2, h, w)
        # P_b(q + f) = P_a(q)  =>  q + f = c + (s_a (q - c) + (a - b) shift) / s_b
        return centre + (scale[a] * (q - centre) + (a - b) * step) / scale[b] - q

    backward = [None] + [flow_between(k, k - 1) for k in range(1, frames)]
    forward = [None] + [flow_between(k - 1, k) for k in range(1, frames)]
    masks = [torch.zeros(1, h, w, dtype=torch.float64) for _ in range(frames)]
    pictures = background
    if square:
        side = square_size or max(min(h, w) // 4, 2)
        move = torch.tensor(velocity, dtype=torch.float64)[:, None, None]  # (2, 1, 1)
        start = torch.tensor([round(0.1 * w), round(0.25 * h)], dtype=torch.float64)[:, None, None]
        gen = torch.Generator().manual_seed(seed + 1)
        tint = torch.tensor([0.9, 0.2, 0.15], dtype=torch.float64)[:, None, None]  # red: far from most photos
        texture = tint * (0.5 + 0.5 * noise_photo(side, side, seed + 1, cell=max(side // 4, 2))[:1].double())
        texture = texture + 0.05 * torch.rand(3, 1, 1, generator=gen, dtype=torch.float64)
        pictures = []
        for k in range(frames):
            local = q - (start + k * move)  # (2, h, w): the pixel in the square's own coordinates
            on = ((local >= -_TOLERANCE) & (local <= side - 1 + _TOLERANCE)).all(dim=0)  # (h, w)
            masks[k] = on[None].double()
            pictures.append(torch.where(on, _sample(texture, local.clamp(0, side - 1)), background[k]))
        for k in range(1, frames):
            on_now, on_before = masks[k].bool()[0], masks[k - 1].bool()[0]
            backward[k] = torch.where(on_now, -move, backward[k])
            forward[k] = torch.where(on_before, move, forward[k])
    visible: list[torch.Tensor | None] = [None]
    for k in range(1, frames):
        target = q + backward[k]  # (2, h, w): where frame k's pixels were in frame k-1
        inside = (target[0] >= -_TOLERANCE) & (target[0] <= w - 1 + _TOLERANCE)
        inside &= (target[1] >= -_TOLERANCE) & (target[1] <= h - 1 + _TOLERANCE)
        # the share of the square in a bilinear read of frame k-1 there: 0 for the background, 1 on the square
        share = warp(masks[k - 1], backward[k])[0]  # (h, w)
        on_now = masks[k].bool()[0]
        clean = torch.where(on_now, share > 1 - _MIXED, share < _MIXED)
        visible.append((inside & clean)[None].float())
    return SyntheticClip(
        frames=[p.clamp(0, 1).float() for p in pictures],
        backward=[None if f is None else f.float() for f in backward],
        forward=[None if f is None else f.float() for f in forward],
        visible=visible,
        squares=[m.float() for m in masks],
    )

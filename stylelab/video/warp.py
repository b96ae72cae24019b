"""Warping by optical flow and Ruder, Dosovitskiy & Brox's weights c (GCPR 2016, "Artistic style transfer for
videos", section 3.2): where the flow between two frames can be trusted.

A flow from a to b is a (2, H, W) tensor of pixel displacements (dx, dy) with a(p) ~ b(p + flow(p)), OpenCV's
calcOpticalFlow(prev=a, next=b) convention. The previous frame x_{i-1} is brought into frame i with the
backward flow f = flow(frame_i, frame_{i-1}): warped(p) = x_{i-1}(p + f(p)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Forward-backward consistency (the paper's eq. 3): a pixel is disoccluded when
#   |w~ + w^|^2 > DISOCCLUSION_RATIO (|w~|^2 + |w^|^2) + DISOCCLUSION_OFFSET
# (the offset in squared pixels forgives small flow errors, the ratio errors that grow with the motion).
DISOCCLUSION_RATIO = 0.01
DISOCCLUSION_OFFSET = 0.5
# Motion boundaries (the paper's eq. 4): |grad u^|^2 + |grad v^|^2 > MOTION_RATIO |w^|^2 + MOTION_OFFSET.
MOTION_RATIO = 0.01
MOTION_OFFSET = 0.002


def _pixel_grid(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel coordinates x, y, (H, W) each, in the dtype and on the device of `like`."""
    ys = torch.arange(h, dtype=like.dtype, device=like.device)
    xs = torch.arange(w, dtype=like.dtype, device=like.device)
    return xs[None, :].expand(h, w), ys[:, None].expand(h, w)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """`image` (B, C, H, W) or (C, H, W) read at p + flow(p) for every pixel p, bilinearly; points outside read the
    nearest border pixel. `flow` is (2, H, W) (the same for every image of the batch) or (B, 2, H, W).
    Differentiable with respect to the image (and the flow); the shape out is the shape in."""
    single = image.dim() == 3
    x = image[None] if single else image  # (B, C, H, W)
    f = (flow[None] if flow.dim() == 3 else flow).to(x.dtype)  # (B or 1, 2, H, W)
    b, _, h, w = x.shape
    if f.shape[-2:] != (h, w):
        raise ValueError(f"a flow of {tuple(f.shape[-2:])} pixels cannot warp an image of {(h, w)}")
    xs, ys = _pixel_grid(h, w, x)
    # align_corners=True puts -1 and +1 on the centres of the first and last pixels: x_norm = 2 x / (W - 1) - 1.
    # A side of one pixel has a single centre; max(., 1) keeps the division finite, and grid_sample then reads
    # that pixel whatever the coordinate.
    gx = 2 * (xs + f[:, 0]) / max(w - 1, 1) - 1  # (B or 1, H, W)
    gy = 2 * (ys + f[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1).expand(b, h, w, 2)  # (B, H, W, 2)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0] if single else out


def _inside(flow: torch.Tensor) -> torch.Tensor:
    """Where p + flow(p) lies in the picture (between the centres of its outer pixels), (H, W) bool."""
    h, w = flow.shape[-2:]
    xs, ys = _pixel_grid(h, w, flow)
    tx, ty = xs + flow[0], ys + flow[1]
    return (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)


def _gradient_energy(flow: torch.Tensor) -> torch.Tensor:
    """|grad u|^2 + |grad v|^2 of a flow (2, H, W), (H, W), by central differences (f(x+1) - f(x-1)) / 2, the
    border pixel repeated outside: the derivative filter (-0.5, 0, 0.5) with mirrored rims that the authors'
    consistencyChecker (manuelruder/artistic-videos) applies."""
    padded = F.pad(flow[None], (1, 1, 1, 1), mode="replicate")[0]  # (2, H + 2, W + 2)
    dx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2  # (2, H, W)
    dy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2
    return (dx**2 + dy**2).sum(dim=0)


def reliable(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s weights c for frame i, (1, H, W) of 0s and 1s, given backward = flow(frame_i, frame_{i-1})
    and forward = flow(frame_{i-1}, frame_i), both (2, H, W).

    0 where the pixel is disoccluded (forward and backward flow disagree), at a motion boundary, or where the
    backward flow leads out of frame i-1 (it was not in view there; the authors' checker marks these too);
    1 elsewhere. The checker's final Gaussian blur of the mask is left out: the weights stay 0 or 1."""
    backward, forward = backward.float(), forward.float()
    w_hat = backward  # (2, H, W)
    w_tilde = warp(forward, w_hat)  # (2, H, W): the forward flow where the backward flow points, w(x + w^(x))
    size = (w_hat**2).sum(dim=0)  # (H, W): |w^|^2
    disoccluded = ((w_tilde + w_hat) ** 2).sum(dim=0) > (
        DISOCCLUSION_RATIO * ((w_tilde**2).sum(dim=0) + size) + DISOCCLUSION_OFFSET
    )
    boundary = _gradient_energy(w_hat) > MOTION_RATIO * size + MOTION_OFFSET
    c = _inside(w_hat) & ~disoccluded & ~boundary  # (H, W)
    return c[None].float()


def long_term(weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Long-term weights (the paper's eq. 7) from the weights c of frames i - j, j in J ascending (the nearest
    frame first): max(c_j - sum of the nearer frames' c, 0), so that each pixel counts against the most recent
    frame where it was visible, and against no older one."""
    out, nearer = [], None
    for c in weights:
        out.append(c.clone() if nearer is None else (c - nearer).clamp_min(0))
        nearer = c if nearer is None else nearer + c
    return out


def endpoint_error(flow: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """The mean Euclidean distance between the vectors of two flows (2, H, W) (or (B, 2, H, W)), over the pixels
    where `mask` ((1, H, W) or (H, W)) is above 0, or over all of them."""
    distance = ((flow.double() - truth.double()) ** 2).sum(dim=-3).sqrt()  # (H, W) or (B, H, W)
    if mask is None:
        return float(distance.mean())
    keep = mask > 0
    if keep.dim() >= 3 and keep.shape[-3] == 1:
        keep = keep.squeeze(-3)  # (H, W) or (B, H, W)
    keep = keep.expand_as(distance)
    if not keep.any():
        raise ValueError("the mask selects no pixel: no endpoint error")
    return float(distance[keep].mean())

"""Measures of a picture computed from its pixels, not from the network: what the trained tests and the
gallery judge a result by. Images are (3, H, W) tensors in [0, 1]; compare images of the same size.

- psnr: how closely a picture reproduces another, pixel for pixel (content reconstructions).
- edge_correlation: whether a picture keeps another's edges (the photo's houses under the painting's strokes).
- palette_distance: how far apart two pictures' colours are, as distributions (stylisation moves it toward
  the painting).
- chroma_error: how far a picture's chroma (YIQ's I and Q) is from another's (colour=luminance and original
  keep the photo's).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stylelab.controls.colour import luminance, pixel_moments, rgb_to_yiq, symmetric_power


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """10 log10(1 / MSE) in dB, for images in [0, 1] (clamped first, as a PNG of them would be)."""
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def edges(x: torch.Tensor, blur: int = 2) -> torch.Tensor:
    """Sobel gradient magnitude of the luminance after a (2 blur + 1)-pixel box blur, (H-2, W-2): the blur
    keeps the outlines of things and drops a painting's brush texture, which has edges of its own."""
    y = luminance(x)[None]  # (1, 1, H, W): YIQ's Y
    if blur:
        y = F.avg_pool2d(F.pad(y, [blur] * 4, mode="replicate"), 2 * blur + 1, stride=1)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).to(y)
    gx = F.conv2d(y, kx[None, None])
    gy = F.conv2d(y, kx.t()[None, None])
    return (gx**2 + gy**2).sqrt()[0, 0]


def edge_correlation(a: torch.Tensor, b: torch.Tensor, blur: int = 2) -> float:
    """Pearson's correlation of the two pictures' edge maps (1: the same outlines; about 0: unrelated)."""
    ea, eb = edges(a, blur).flatten(), edges(b, blur).flatten()
    ea, eb = ea - ea.mean(), eb - eb.mean()
    return float((ea * eb).sum() / (ea.norm() * eb.norm()).clamp_min(1e-12))


def palette_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The 2-Wasserstein distance between Gaussians fitted to the two pictures' RGB pixels (means and 3x3
    covariances), in [0, 1] units: 0 for the same colour distribution, whatever the layout."""
    mu_a, cov_a = pixel_moments(a.clamp(0, 1))
    mu_b, cov_b = pixel_moments(b.clamp(0, 1))
    root_a = symmetric_power(cov_a, 0.5)
    cross = symmetric_power(root_a @ cov_b @ root_a, 0.5)
    w2 = float(((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a + cov_b - 2 * cross))
    return math.sqrt(max(w2, 0.0))


def chroma_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of YIQ's I and Q channels (their range is about +-0.6)."""
    return float((rgb_to_yiq(a)[1:] - rgb_to_yiq(b)[1:]).abs().mean())


def colour_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean RGB colour, (3,), over the pixels where `mask` (H, W) is true (all without one)."""
    pixels = x.flatten(1) if mask is None else x[:, mask]
    return pixels.mean(dim=1)

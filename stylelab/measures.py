"""Measures of a picture computed from its pixels, not from the network: what the trained tests and the
gallery judge a result by. Images are (3, H, W) tensors in [0, 1]; compare images of the same size
(texture_distance takes any sizes).

- psnr: how closely a picture reproduces another, pixel for pixel (content reconstructions).
- edge_correlation: whether a picture keeps another's edges (the photo's houses under the painting's strokes).
- palette_distance: how far apart two pictures' colours are, as distributions (stylisation moves it toward
  the painting).
- chroma_error: how far a picture's chroma (YIQ's I and Q) is from another's (colour=luminance and original
  keep the photo's).
- texture_distance / texture_ratio: how far a picture's luminance-patch texture moved from the photo's toward the
  painting's (1: not at all; 0: the painting's), colour-blind.
- judged: a stylised picture's edges, palettes and texture at once, against its photo and painting at any size.
- temporal_error: how much a stylised clip flickers, each frame against its predecessor warped by the optical flow
  (Ruder et al. 2016's temporal loss, averaged over the clip).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stylelab.controls.colour import luminance, pixel_moments, rgb_to_yiq, symmetric_power
from stylelab.io.images import resize_to
from stylelab.video.warp import warp


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


TEXTURE_PATCH = 7  # k: patches are k x k luminance pixels
TEXTURE_STRIDE = 2  # one patch every 2 pixels each way: a 512 px picture gives ~64k patches, not ~256k
TEXTURE_FLOOR = 0.02  # c, on the [0, 1] luminance scale
TEXTURE_DIRECTIONS = 64  # K random projections of the sliced Wasserstein distance


def texture_patches(x: torch.Tensor, k: int = TEXTURE_PATCH, stride: int = TEXTURE_STRIDE) -> torch.Tensor:
    """Every k x k patch (one every `stride` pixels) of the luminance (YIQ's Y) of x clamped to [0, 1], as
    float64 rows of k*k values, each minus its mean and divided by (its population std + TEXTURE_FLOOR)."""
    y = luminance(x.clamp(0, 1).double())[None]  # (1, 1, H, W)
    p = F.unfold(y, k, stride=stride)[0].t()  # (L, k*k)
    p = p - p.mean(dim=1, keepdim=True)
    # The floor keeps a flat patch (sky, with a little noise) near zero instead of blowing its noise up to unit
    # contrast, while a textured patch (std >> 0.02) becomes a unit-contrast shape, whatever its brightness.
    return p / (p.std(dim=1, unbiased=False, keepdim=True) + TEXTURE_FLOOR)


def _quantiles(v: torch.Tensor, m: int) -> torch.Tensor:
    """Sorted rows v (K, N) read at the quantiles (i + 1/2) / m, i < m, by linear interpolation, taking
    v[:, j] to sit at quantile (j + 1/2) / N."""
    n = v.shape[1]
    pos = ((torch.arange(m, dtype=v.dtype) + 0.5) * (n / m) - 0.5).clamp(0, n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    w = pos - lo
    return v[:, lo] * (1 - w) + v[:, hi] * w


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """Sliced 2-Wasserstein distance between point sets a (N, D) and b (M, D) along unit `directions`
    (K, D): project, sort, and take sqrt(mean over directions and quantiles of the squared differences). With
    N != M both sorted projections are read at the smaller count's quantiles (i + 1/2) / min(N, M)."""
    pa = (directions @ a.t()).sort(dim=1).values
    pb = (directions @ b.t()).sort(dim=1).values
    m = min(pa.shape[1], pb.shape[1])
    # only the larger set is resampled: the smaller one already sits at its own quantiles, and equal sets stay
    # bit-for-bit equal, so a picture's distance to itself is exactly 0
    pa = pa if pa.shape[1] == m else _quantiles(pa, m)
    pb = pb if pb.shape[1] == m else _quantiles(pb, m)
    return math.sqrt(float(((pa - pb) ** 2).mean()))


def texture_distance(
    a: torch.Tensor, b: torch.Tensor, k: int = TEXTURE_PATCH, stride: int = TEXTURE_STRIDE, seed: int = 0
) -> float:
    """Sliced 2-Wasserstein distance between the two pictures' contrast-normalised luminance patches
    (texture_patches), along K = 64 unit directions in R^(k*k): the rows of
    torch.randn(K, k*k, dtype=float64, generator=torch.Generator().manual_seed(seed)) divided by their norms.
    Colour does not count (only Y), nor does size (quantiles), nor layout (distributions); the seed fixes the
    directions, so the measure is deterministic."""
    d = torch.randn(TEXTURE_DIRECTIONS, k * k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    d = d / d.norm(dim=1, keepdim=True)
    return sliced_wasserstein(texture_patches(a, k, stride), texture_patches(b, k, stride), d)


def texture_ratio(
    picture: torch.Tensor,
    photo: torch.Tensor,
    painting: torch.Tensor,
    k: int = TEXTURE_PATCH,
    stride: int = TEXTURE_STRIDE,
    seed: int = 0,
) -> float:
    """texture_distance(picture, painting) / texture_distance(photo, painting): 1 when the picture's texture
    is the photo's, 0 when it is the painting's; lower = more stylised."""
    base = texture_distance(photo, painting, k, stride, seed)
    if base == 0:
        raise ValueError("the photo and the painting have the same texture (texture distance 0): no texture ratio")
    return texture_distance(picture, painting, k, stride, seed) / base


def judged(picture: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor) -> dict[str, float]:
    """A stylised picture (3, H, W) against its photo and its painting, both resized to (H, W) as a run resizes
    them: edge correlation with the photo, palette distances to the painting and to the photo, texture ratio."""
    picture = picture.clamp(0, 1)
    at = tuple(picture.shape[-2:])
    photo, painting = resize_to(photo, at), resize_to(painting, at)
    return {
        "edges": edge_correlation(picture, photo),
        "palette_to_painting": palette_distance(picture, painting),
        "palette_to_photo": palette_distance(picture, photo),
        "texture": texture_ratio(picture, photo, painting),
    }


def temporal_error(
    frames: list[torch.Tensor] | torch.Tensor,
    flows: list[torch.Tensor],
    weights: list[torch.Tensor] | None = None,
) -> float:
    """Ruder et al.'s temporal loss averaged over a clip: the mean over consecutive frames of
    (1/D) sum_k c_k (x_{i+1,k} - warp(x_i, f_i)_k)^2, D = 3 H W, with f_i = flows[i] = flow(frame_{i+1}, frame_i)
    (2, H, W) the backward flow and c = weights[i] (1, H, W) (1 everywhere without weights). `frames` are N
    (3, H, W) images or one (N, 3, H, W) tensor, `flows` and `weights` N - 1 each. 0: no change beyond the motion."""
    if len(frames) < 2:
        raise ValueError(f"a temporal error needs at least 2 frames, not {len(frames)}")
    if len(flows) != len(frames) - 1 or (weights is not None and len(weights) != len(flows)):
        got = f"{len(flows)} flows" + ("" if weights is None else f" and {len(weights)} weights")
        raise ValueError(f"{len(frames)} frames need {len(frames) - 1} backward flows (and weights), not {got}")
    total = 0.0
    for i, flow in enumerate(flows):
        previous, current = frames[i].double(), frames[i + 1].double()  # (3, H, W)
        squared = (current - warp(previous, flow.double())) ** 2  # (3, H, W)
        if weights is not None:
            squared = squared * weights[i].double()  # (1, H, W): the same weight on the three channels
        total += float(squared.sum()) / current.numel()
    return total / len(flows)

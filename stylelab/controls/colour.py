"""Colour control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer", sec. 5).

Images are RGB in [0, 1], (..., 3, H, W). YIQ is NTSC's:
    Y = 0.299 R + 0.587 G + 0.114 B
    I = 0.595716 R - 0.274453 G - 0.321263 B
    Q = 0.211456 R - 0.522591 G + 0.311135 B
and back by the inverse matrix.

The four options of the config group `colour`, each an object with prepare() (before the optimisation:
the content and style images it sees) and finish() (after it: the picture that is written):
    none        nothing changes
    luminance   luminance-only transfer: content and style become their luminance Y (in all three channels),
                the style's matched to the content's mean and standard deviation; the result's Y is put
                together with the content's I and Q
    match       the style recoloured so its pixel mean and covariance are the content's (pca | chol | sym)
    original    post-hoc only: the result's Y with the content's I and Q (jcjohnson's -original_colors 1)
"""

from __future__ import annotations

import math
from typing import get_args

import torch

from stylelab.choices import Method
from stylelab.errors import StyleLabError

RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=torch.float64
)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)
METHODS: tuple[str, ...] = get_args(Method)


def _apply(matrix: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """A 3 x 3 colour matrix applied to every pixel of (..., 3, H, W)."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(img.dtype), img)


def rgb_to_yiq(img: torch.Tensor) -> torch.Tensor:
    return _apply(RGB_TO_YIQ.to(img.device), img)


def yiq_to_rgb(img: torch.Tensor) -> torch.Tensor:
    return _apply(YIQ_TO_RGB.to(img.device), img)


def luminance(img: torch.Tensor) -> torch.Tensor:
    """Y, (..., 1, H, W)."""
    return rgb_to_yiq(img)[..., :1, :, :]


def grey(y: torch.Tensor) -> torch.Tensor:
    """A luminance (..., 1, H, W) as an RGB image whose three channels are Y (its own Y is Y again)."""
    return y.expand(*y.shape[:-3], 3, *y.shape[-2:]).clone()


def with_colours_of(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance with the content's chroma (I, Q), back in RGB, clipped to [0, 1]."""
    yiq = torch.cat([luminance(result), rgb_to_yiq(content)[..., 1:, :, :]], dim=-3)
    return yiq_to_rgb(yiq).clamp(0, 1)


def match_luminance(style_y: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """L_S' = sigma_C / sigma_S (L_S - mu_S) + mu_C: the style's luminance with the content's mean and std."""
    mu_s, sigma_s = style_y.mean(), style_y.std(correction=0)
    mu_c, sigma_c = content_y.mean(), content_y.std(correction=0)
    if sigma_s == 0:  # a flat style: nothing to stretch
        return torch.full_like(style_y, float(mu_c))
    return (style_y - mu_s) * (sigma_c / sigma_s) + mu_c


def pixel_moments(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3,) and covariance (3, 3) of the pixels of a (3, H, W) image, float64."""
    x = img.reshape(3, -1).double()
    mu = x.mean(dim=1)
    centred = x - mu[:, None]
    return mu, centred @ centred.T / x.shape[1]


def symmetric_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    eigenvalues, vectors = torch.linalg.eigh(matrix)
    return (vectors * eigenvalues.clamp_min(0).pow(power)) @ vectors.T


def match_colours(
    style: torch.Tensor, content: torch.Tensor, method: Method = "pca", eps: float = 1e-5
) -> torch.Tensor:
    """The style (3, H, W) recoloured so its pixels have the content's mean and covariance:
    x' = A (x - mu_S) + mu_C, eps I added to both covariances, clipped to [0, 1]. A is
        pca   Sigma_C^1/2 Sigma_S^-1/2                                  (symmetric square roots)
        chol  L_C L_S^-1                                                (Cholesky factors)
        sym   Sigma_S^-1/2 (Sigma_S^1/2 Sigma_C Sigma_S^1/2)^1/2 Sigma_S^-1/2
    """
    if method not in METHODS:
        raise StyleLabError(f"colour.method must be one of {', '.join(METHODS)}, not {method!r}")
    mu_s, cov_s = pixel_moments(style)
    mu_c, cov_c = pixel_moments(content)
    eye = torch.eye(3, dtype=torch.float64)
    cov_s, cov_c = cov_s + eps * eye, cov_c + eps * eye
    if method == "pca":
        a = symmetric_power(cov_c, 0.5) @ symmetric_power(cov_s, -0.5)
    elif method == "chol":
        a = torch.linalg.cholesky(cov_c) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
    else:
        root_s, inv_root_s = symmetric_power(cov_s, 0.5), symmetric_power(cov_s, -0.5)
        a = inv_root_s @ symmetric_power(root_s @ cov_c @ root_s, 0.5) @ inv_root_s
    x = style.reshape(3, -1).double()
    recoloured = a @ (x - mu_s[:, None]) + mu_c[:, None]
    return recoloured.reshape(style.shape).clamp(0, 1).to(style.dtype)


# ---------------------------------------------------------------- the options of the group `colour`


class Colour:
    """colour=none: content and style as they are, and the result as it is."""

    def prepare(self, content: torch.Tensor, styles: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The content and style images (3, H, W) the optimisation sees."""
        return content, styles

    def seen(self, image: torch.Tensor) -> torch.Tensor:
        """What the network and the loss terms see of the optimised image (1, 3, H, W): all of it."""
        return image

    def finish(self, result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """The picture written, from the optimised image and the content at its size, (1, 3, H, W)."""
        return result


class Luminance(Colour):
    """colour=luminance: optimise on luminance, then put the result's Y together with the content's I and Q."""

    def prepare(self, content, styles):
        y = luminance(content)
        return grey(y), [grey(match_luminance(luminance(style), y)) for style in styles]

    def seen(self, image):
        # Only the luminance: the optimised image has three channels, and the loss of a grey target can be
        # lowered by chroma too (from the photo, the style's strokes grew in I and Q, which finish() throws
        # away, and the result's luminance stayed nearly the photo's). Through Y the gradient has no chroma.
        return grey(luminance(image))

    def finish(self, result, content):
        return with_colours_of(result, content)


class Match(Colour):
    """colour=match: every style recoloured to the content's pixel mean and covariance before anything else."""

    def __init__(self, method: Method = "pca", eps: float = 1e-5):
        if method not in METHODS:
            raise StyleLabError(f"colour.method must be one of {', '.join(METHODS)}, not {method!r}")
        if not math.isfinite(eps):
            raise StyleLabError(f"colour.eps must be a finite number, not {eps}")
        if not eps >= 0:
            raise StyleLabError(f"colour.eps must be >= 0, not {eps}")
        self.method, self.eps = str(method), float(eps)

    def prepare(self, content, styles):
        return content, [match_colours(style, content, self.method, self.eps) for style in styles]


class Original(Colour):
    """colour=original: the result's luminance with the content's chroma, after the optimisation only."""

    def finish(self, result, content):
        return with_colours_of(result, content)

"""Spatial control (Gatys et al. 2017, sec. 4): masks that tie regions of the image to styles.

A mask is (1, 1, H, W) in [0, 1]: 1 inside its region. It reaches each layer by one of three rules, which
the model applies along its receptive fields (VGG.propagate_guide):
    simple   resized to the layer's grid (area average)
    inside   the units whose receptive field lies inside the region (eroded by each conv and pool)
    all      the units whose receptive field touches the region (dilated by each conv and pool)
and is then normalised so that mean(T^2) = 1 over the layer's positions: a mask covering everything is
1 everywhere, and the guided Gram G = (F T)(F T)^T is then exactly the unguided one.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F

from stylelab.choices import Propagation
from stylelab.errors import StyleLabError
from stylelab.io import images, samples

PROPAGATIONS: tuple[str, ...] = get_args(Propagation)


def read_mask(spec: str, *, soft: bool = False) -> torch.Tensor:
    """An image file as a mask (1, 1, H, W): its luminance, thresholded at 0.5 unless soft."""
    picture = images.load_image(samples.resolve_image(spec))  # (3, H, W), any image Pillow reads
    return to_mask(picture, soft=soft)


def to_mask(picture: torch.Tensor, *, soft: bool = False) -> torch.Tensor:
    grey = (0.299 * picture[0] + 0.587 * picture[1] + 0.114 * picture[2])[None, None]  # (1, 1, H, W)
    return grey if soft else (grey >= 0.5).to(grey.dtype)


def resize_mask(mask: torch.Tensor, hw: tuple[int, int], *, soft: bool = False) -> torch.Tensor:
    """The mask at the image's size (H, W): area-averaged, thresholded at 0.5 again unless soft."""
    if tuple(mask.shape[-2:]) == tuple(hw):
        return mask
    resized = F.interpolate(
        mask,
        size=hw,
        mode="area" if hw[0] <= mask.shape[-2] else "bilinear",
        **({} if hw[0] <= mask.shape[-2] else {"align_corners": False}),
    )
    return resized.clamp(0, 1) if soft else (resized >= 0.5).to(mask.dtype)


def normalise(mask: torch.Tensor) -> torch.Tensor | None:
    """T / sqrt(mean(T^2)), so a full mask is exactly 1; None for a region with no position at this layer."""
    energy = mask.pow(2).mean()
    if energy == 0:
        return None
    if energy == 1:
        return mask
    return mask / energy.sqrt()


def guides(mask: torch.Tensor, layers, model, how: str = "simple") -> dict[str, torch.Tensor | None]:
    """The normalised mask on each layer's grid, as `model` propagates it: {layer: (1, 1, h, w) or None}."""
    if how not in PROPAGATIONS:
        raise StyleLabError(f"mask.propagation must be one of {', '.join(PROPAGATIONS)}, not {how!r}")
    return {layer: normalise(model.propagate_guide(mask, layer, how)) for layer in layers}

"""Terms on the image itself: total variation, L_tv = sum of squared differences between neighbours."""

from __future__ import annotations

import torch

from stylelab.losses.base import IMAGE, Term


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: sum of squared differences between vertical and horizontal neighbours."""
    dy = image[..., 1:, :] - image[..., :-1, :]  # (B, 3, H-1, W)
    dx = image[..., :, 1:] - image[..., :, :-1]  # (B, 3, H, W-1)
    return dy.pow(2).sum() + dx.pow(2).sum()


class TotalVariation(Term):
    """L_tv of the image (the pseudo-layer "image"); its weight is loss.tv_weight."""

    def __init__(self):
        super().__init__({IMAGE: 1.0})

    def representation(self, image: torch.Tensor) -> torch.Tensor:
        return image.float()  # (B, 3, H, W)

    def score(self, image: torch.Tensor, target: None) -> torch.Tensor:
        return tv_loss(image)  # no target: the image's own smoothness

"""The content loss of Gatys et al. (2016), per layer: L_content = 1/2 sum_ij (F_ij - P_ij)^2.

F: the generated image's responses at the layer, P: the content image's, both (B, N, H, W).
"""

from __future__ import annotations

import torch

from stylelab.losses.base import Term


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/2 * sum (F - P)^2, summed over the batch too."""
    return 0.5 * (features.float() - target.float()).pow(2).sum()


class FeatureReconstruction(Term):
    """The paper's content term: L_content,l = 1/2 sum (F - P)^2 at each content layer l (the representation
    is the responses themselves)."""

    def score(self, f: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return content_loss(f, target)

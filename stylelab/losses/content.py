"""The content loss of Gatys et al. (2016), per layer: L_content = 1/2 sum_ij (F_ij - P_ij)^2.

F: the generated image's responses at the layer, P: the content image's, both (B, N, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from stylelab.losses.base import Term


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/2 * sum (F - P)^2, summed over the batch too."""
    return 0.5 * (features.float() - target.float()).pow(2).sum()


class FeatureReconstruction(Term):
    """The paper's content term: L_content,l = 1/2 sum (F - P)^2 at each content layer l."""

    def __init__(self, layers: Mapping[str, float]):
        super().__init__(layers)
        self.targets: dict[str, torch.Tensor] = {}

    def set_target(self, features: dict[str, torch.Tensor]) -> None:
        # a copy: the extractor's in-place ReLUs may later overwrite the tensor it returned
        self.targets = {name: features[name].detach().clone() for name in self.layers}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: content_loss(features[name], self.targets[name]) for name in self.layers}

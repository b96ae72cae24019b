"""Ruder, Dosovitskiy & Brox's temporal term (GCPR 2016): how far the image is from the earlier stylised frames,
warped into this frame by the optical flow, where the flow can be trusted.

    L_temporal(x) = sum_j (1/D) sum_k c_jk (x_k - w_jk)^2,   D = C * H * W

w_j is the stylised frame i - j warped into frame i and c_j its weights: 0 where the flow is not trustworthy
(disocclusions, motion boundaries), 1 elsewhere; with several earlier frames (long-term consistency) each
pixel is counted only against the nearest frame where it was visible (stylelab.video.warp.long_term). With a
single earlier frame this is the paper's short-term loss.

Its target is a new kind: not the responses of the content or the style, but the earlier frames themselves
(target `previous`), which the video run hands over with set_previous. A run without earlier frames (an image,
or a clip's first frame) has no target and the term is 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stylelab.losses.base import IMAGE, Term


class Temporal(Term):
    """The temporal term on the image (the pseudo-layer "image"); its weight is loss.temporal_weight."""

    def __init__(self):
        super().__init__({IMAGE: 1.0})

    def set_previous(self, warped: list[torch.Tensor], weights: list[torch.Tensor]) -> None:
        """The earlier stylised frames warped into this one, (1, 3, H, W) each, and their weights c, (1, 1, H, W)
        (already long-term: each pixel weighted against one frame at most). Empty lists: no target."""
        if len(warped) != len(weights):
            raise ValueError(f"{len(warped)} warped frames but {len(weights)} weights")
        self.targets[IMAGE] = [(w.detach().float(), c.detach().float()) for w, c in zip(warped, weights)]

    def set_target(self, features: dict[str, torch.Tensor]) -> None:
        """The previous frames are not responses of an image: only set_previous sets them."""

    def representation(self, image: torch.Tensor) -> torch.Tensor:
        return image.float()  # (1, 3, H, W)

    def score(self, image: torch.Tensor, previous) -> torch.Tensor:
        total = image.new_zeros(())
        for warped, c in previous or []:
            if warped.shape[-2:] != image.shape[-2:]:  # a coarse level of coarse to fine sees them smaller
                warped = F.interpolate(warped, size=image.shape[-2:], mode="bilinear", align_corners=False)
                c = F.interpolate(c, size=image.shape[-2:], mode="bilinear", align_corners=False)
            total = total + (c * (image - warped).pow(2)).sum() / image[0].numel()  # (1/D) sum_k c_k (x_k - w_k)^2
        return total

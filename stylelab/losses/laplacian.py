"""The Laplacian term of Li, Xu, Nie & Chua (2017), "Laplacian-Steered Neural Style Transfer" (ACM MM).

With D_p(x) the Laplacian of the image x average-pooled over p x p blocks,

    L_lap,p = sum_ij (D_p(x_c) - D_p(x))_ij^2

x_c the content image. The Laplacian is the 3 x 3 kernel [[0, -1, 0], [-1, 4, -1], [0, -1, 0]] applied to each
colour channel and summed over the channels (one map), without padding, as in the authors' code
(askerlee/lapstyle, lap_style.lua). Several pool sizes add up with their weights: the term's "layers" are
the pool sizes, named p4, p16, ... Its value is on the image as stylelab optimises it (RGB in [0, 1]); the
authors' Caffe input is 255 times that, so their weights correspond to 255^2 times ours, and their code
also averages over the map where the paper (and this term) sums.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from stylelab.errors import StyleLabError
from stylelab.losses.base import IMAGE, Term, at_least_float32

_KERNEL = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
_POOL = re.compile(r"p([1-9][0-9]*)")


def pooled_laplacian(image: torch.Tensor, pool: int) -> torch.Tensor:
    """D_p: (B, 3, H, W) -> (B, 1, H/p - 2, W/p - 2), the Laplacian of the p x p average-pooled image."""
    pooled = F.avg_pool2d(image, pool) if pool > 1 else image  # (B, 3, H/p, W/p)
    kernel = _KERNEL.to(image).expand(1, 3, 3, 3)  # one output map: the channels' Laplacians summed
    return F.conv2d(pooled, kernel)


def pool_sizes(layers) -> dict[str, int]:
    """{"p4": 4, ...} from the term's layer names, or a StyleLabError naming the form they take."""
    sizes = {}
    for name in layers:
        match = _POOL.fullmatch(str(name))
        if not match:
            raise StyleLabError(f"the Laplacian term's layers are pool sizes written p<size> (p4, p16), not {name!r}")
        sizes[name] = int(match.group(1))
    return sizes


class Laplacian(Term):
    """L_lap = sum_p w_p sum_ij (D_p(x_c) - D_p(x))^2 over the pool sizes p its layers name (p4: p = 4)."""

    def __init__(self, layers: Mapping[str, float]):
        super().__init__(layers)
        self.pools = pool_sizes(self.layers)

    @property
    def reads(self) -> list[str]:
        return []  # the image only

    @property
    def min_side(self) -> int:
        return 3 * max(self.pools.values(), default=1)  # the 3 x 3 kernel needs 3 x 3 pooled pixels

    def response(self, features: dict[str, torch.Tensor], layer: str) -> torch.Tensor:
        # the "layer" p<size> is the Laplacian of the image average-pooled over size x size, (B, 3, h, w)
        return pooled_laplacian(at_least_float32(features[IMAGE]), self.pools[layer])

    def score(self, d: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (d - target).pow(2).sum()

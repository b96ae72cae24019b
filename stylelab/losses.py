"""The losses of Gatys, Ecker & Bethge, exactly as the paper writes them.

F: responses of one layer, (B, N, H, W) with N filters and M = H*W positions.
    content:  L_content = 1/2 * sum_ij (F_ij - P_ij)^2
    gram:     G_ij = sum_k F_ik F_jk                              (no normalisation)
    style:    E_l = sum_ij (G_ij - A_ij)^2 / (4 N^2 M^2)
    total:    alpha * sum_l c_l L_content,l + beta * sum_l w_l E_l + tv_weight * L_tv
Pure functions on tensors, plus one module that holds the (fixed) targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn


class _Gram(torch.autograd.Function):
    """G = F F^T whose backward is one matmul, dF = (dG + dG^T) F, where autograd's bmm would do two."""

    @staticmethod
    def forward(ctx, f: torch.Tensor, positions_first: bool) -> torch.Tensor:
        ctx.save_for_backward(f)
        ctx.positions_first = positions_first
        if positions_first:  # f is (B, M, N)
            return torch.bmm(f.transpose(1, 2), f)  # (B, N, N)
        return torch.bmm(f, f.transpose(1, 2))  # f is (B, N, M) -> (B, N, N)

    @staticmethod
    def backward(ctx, dg: torch.Tensor):
        (f,) = ctx.saved_tensors
        sym = dg + dg.transpose(1, 2)  # (B, N, N)
        return (torch.bmm(f, sym) if ctx.positions_first else torch.bmm(sym, f)), None


def gram(features: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) -> (B, N, N), G = F F^T over the M = H*W positions, one matmul."""
    b, n, h, w = features.shape
    # at least float32 for the sums (a caller may pass half-precision responses): M can be 10^6 positions
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    if n > 1 and features.is_contiguous(memory_format=torch.channels_last):
        # NHWC memory is already (B, M, N) row-major: a view, no copy of the activations
        return _Gram.apply(features.permute(0, 2, 3, 1).reshape(b, h * w, n), True)
    return _Gram.apply(features.reshape(b, n, h * w), False)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/2 * sum (F - P)^2, summed over the batch too."""
    return 0.5 * (features.float() - target.float()).pow(2).sum()


def style_layer_loss(g: torch.Tensor, a: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """E_l = sum (G - A)^2 / (4 N^2 M^2); G, A are (B, N, N) Grams."""
    # dividing before squaring keeps the sum in float32 range at large M (G ~ M * activation^2)
    return ((g - a) / (2.0 * n * m)).pow(2).sum()


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: sum of squared differences between vertical and horizontal neighbours."""
    dy = image[..., 1:, :] - image[..., :-1, :]  # (B, 3, H-1, W)
    dx = image[..., :, 1:] - image[..., :, :-1]  # (B, 3, H, W-1)
    return dy.pow(2).sum() + dx.pow(2).sum()


@dataclass
class LossTerms:
    """One evaluation of the objective. Per-layer values are unweighted (L_content,l and E_l)."""

    total: torch.Tensor
    content: torch.Tensor  # sum_l c_l L_content,l  (before alpha)
    style: torch.Tensor  # sum_l w_l E_l           (before beta)
    tv: torch.Tensor  # L_tv                    (before tv_weight)
    weighted_content: torch.Tensor  # alpha * content
    weighted_style: torch.Tensor  # beta * style
    content_layers: dict[str, torch.Tensor] = field(default_factory=dict)
    style_layers: dict[str, torch.Tensor] = field(default_factory=dict)

    def detached(self) -> "LossTerms":
        return LossTerms(
            *(t.detach() for t in (self.total, self.content, self.style, self.tv, self.weighted_content, self.weighted_style)),
            {k: v.detach() for k, v in self.content_layers.items()},
            {k: v.detach() for k, v in self.style_layers.items()},
        )

    def scalars(self) -> dict[str, float]:
        """Flat {tag: value} for logging; one device sync for all values."""
        tags = {
            "loss/total": self.total,
            "loss/content": self.content,
            "loss/style": self.style,
            "loss/tv": self.tv,
            "loss/weighted/content": self.weighted_content,
            "loss/weighted/style": self.weighted_style,
        }
        tags.update({f"loss/content/{k}": v for k, v in self.content_layers.items()})
        tags.update({f"loss/style/{k}": v for k, v in self.style_layers.items()})
        values = torch.stack([v.detach().float().reshape(()) for v in tags.values()]).cpu().tolist()
        return dict(zip(tags, values))


class StyleTransferLoss(nn.Module):
    """alpha * L_content + beta * L_style (+ tv), with targets computed once from the content/style responses.

    content_weights / style_weights: {layer: weight}. Targets are buffers, so .to(device) moves them.
    """

    def __init__(
        self,
        content_features: dict[str, torch.Tensor],
        style_features: dict[str, torch.Tensor],
        content_weights: dict[str, float],
        style_weights: dict[str, float],
        alpha: float,
        beta: float,
        tv_weight: float = 0.0,
    ):
        super().__init__()
        self.content_weights = dict(content_weights)
        self.style_weights = dict(style_weights)
        self.alpha, self.beta, self.tv_weight = float(alpha), float(beta), float(tv_weight)
        with torch.no_grad():
            for name in self.content_weights:
                self.register_buffer(f"content_{name}", content_features[name].detach().clone())
            for name in self.style_weights:
                self.register_buffer(f"gram_{name}", gram(style_features[name].detach()))

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([*self.content_weights, *self.style_weights]))

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> LossTerms:
        zero = image.new_zeros((), dtype=torch.float32)
        content_layers = {
            name: content_loss(features[name], getattr(self, f"content_{name}")) for name in self.content_weights
        }
        style_layers = {}
        for name in self.style_weights:
            f = features[name]  # (B, N, H, W)
            _, n, h, w = f.shape
            style_layers[name] = style_layer_loss(gram(f), getattr(self, f"gram_{name}"), n, h * w)
        content = sum((self.content_weights[k] * v for k, v in content_layers.items()), zero)
        style = sum((self.style_weights[k] * v for k, v in style_layers.items()), zero)
        tv = tv_loss(image.float()) if self.tv_weight else zero
        weighted_content = self.alpha * content
        weighted_style = self.beta * style
        total = weighted_content + weighted_style + self.tv_weight * tv
        return LossTerms(total, content, style, tv, weighted_content, weighted_style, content_layers, style_layers)

"""Style losses, per layer. F: the generated image's responses at layer l, S: the style image's, each
N_l filters x M positions (S may have another M). mu_i and sigma_i are the mean and population standard
deviation (divide by M) of filter i over the positions; Sigma is the population covariance (1/M) of the
N_l filters.

    gram        E_l = sum_ij (G_ij - A_ij)^2 / (4 N^2 M^2),  G = F F^T, A = S S^T      (Gatys et al. 2016)
    mean_std    E_l = (1/N) sum_i (mu_i(F) - mu_i(S))^2 + (sigma_i(F) - sigma_i(S))^2 (Li et al. 2017)
    w2          E_l = ||mu_F - mu_S||^2 + tr(Sigma_F + Sigma_S - 2 (Sigma_S^1/2 Sigma_F Sigma_S^1/2)^1/2)
    sliced_w2   E_l = (1/K) sum_k mean_m (sort(F v_k)_m - sort(S v_k)_m)^2, v_k random unit directions
                                                                    (Heitz et al. 2021; in sliced.py)

Each is a Term in the manner of pystiche: responses -> representation -> score against the style's
representation, which is computed once, in set_target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from stylelab.errors import StyleLabError
from stylelab.losses.base import Term, at_least_float32

# ---------------------------------------------------------------- gram


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
    features = at_least_float32(features)
    if n > 1 and features.is_contiguous(memory_format=torch.channels_last):
        # NHWC memory is already (B, M, N) row-major: a view, no copy of the activations
        return _Gram.apply(features.permute(0, 2, 3, 1).reshape(b, h * w, n), True)
    return _Gram.apply(features.reshape(b, n, h * w), False)


def style_layer_loss(g: torch.Tensor, a: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """E_l = sum (G - A)^2 / (4 N^2 M^2); G, A are (B, N, N) Grams."""
    # dividing before squaring keeps the sum in float32 range at large M (G ~ M * activation^2)
    return ((g - a) / (2.0 * n * m)).pow(2).sum()


class StyleLoss(Term):
    """A style term in three steps, per layer: representation of the responses, the style's representation
    (once per image size, in set_targets), and a score comparing the two.

    Several styles are blended into one target by `blend` (a loss that cannot blend leaves `blends` False),
    and with spatial control each region of the image has its own style target: the responses of the
    region, `guided` by its mask, are scored against it (a loss that cannot leaves `guides` False).
    """

    blends = False  # several styles mixed into one target (style_blend)
    guides = False  # regions of the image matched to their own styles (mask.content)

    def __init__(self, layers: Mapping[str, float]):
        super().__init__(layers)
        self.regions: list[tuple[dict, dict]] | None = None  # per region: ({layer: guide}, {layer: target})

    def representation(self, f: torch.Tensor):
        """(B, N, H, W) responses -> what the loss compares (Gram, moments, ...)."""
        raise NotImplementedError(f"{type(self).__name__} defines no representation")

    def target_representation(self, f: torch.Tensor):
        """The style's representation; by default the same as the generated image's."""
        return self.representation(f)

    def blend(self, targets: list, weights: list[float]):
        """One target from the style targets of several images, mixed with `weights` (summing to 1)."""
        raise StyleLabError(f"{type(self).__name__} cannot blend several styles")

    def finish_target(self, target):
        """The last step of a style target, after any blending (default: nothing)."""
        return target

    def guided(self, f: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """The responses of one region: f (B, N, h, w) under its normalised mask (1, 1, h, w)."""
        raise StyleLabError(f"{type(self).__name__} has no spatial control")

    def set_target(self, features: dict[str, torch.Tensor]) -> None:
        self.set_targets([features])

    def set_targets(
        self,
        styles: list[dict[str, torch.Tensor]],
        weights: list[float] | None = None,
        guides: list[dict] | None = None,
        style_guides: list[dict | None] | None = None,
    ) -> None:
        """The targets from the style images' responses {layer: (1, N, h, w)}.

        Without `guides`, one target per layer: the styles blended with `weights`. With `guides` (one
        {layer: normalised mask or None} per region of the generated image), region r is matched to
        styles[r] (or to the only style), within style_guides[r] of that style image when given.
        """
        with torch.no_grad():
            if guides is None:
                self.regions = None
                for name in self.layers:
                    targets = [self.target_representation(style[name].detach()) for style in styles]
                    target = targets[0] if len(targets) == 1 else self.blend(targets, list(weights))
                    self.targets[name] = self.finish_target(target)
                return
            self.regions = []
            for r, guide in enumerate(guides):
                style = styles[r if len(styles) > 1 else 0]
                within = style_guides[r] if style_guides else None
                targets = {}
                for name in self.layers:
                    f = style[name].detach()
                    if within is not None:
                        f = None if within[name] is None else self.guided(f, within[name])
                    empty = f is None or guide[name] is None  # a region with no position at this layer
                    targets[name] = None if empty else self.finish_target(self.target_representation(f))
                self.regions.append((guide, targets))

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.regions is None:
            return super().forward(features)
        values = {}
        for name in self.layers:
            f = features[name]
            value = f.new_zeros((), dtype=torch.float32)
            for guide, targets in self.regions:  # E_l = sum over regions r of E_l^r
                if targets[name] is not None:
                    value = value + self.score(self.representation(self.guided(f, guide[name])), targets[name])
            values[name] = value
        return values


class GramLoss(StyleLoss):
    """The paper's E_l = sum (G - A)^2 / (4 N^2 M^2), with G = F F^T unnormalised (M: the generated image's).

    Several styles: A = sum_i w_i A_i (each A_i summed over the style's own positions, scaled to M).
    Spatial control (Gatys et al. 2017): G^r = (F T^r)(F T^r)^T with the region's mask T^r normalised to
    mean(T^2) = 1 on the layer, so a mask covering everything gives exactly the unguided loss.
    """

    blends = True
    guides = True

    def representation(self, f: torch.Tensor):
        _, n, h, w = f.shape
        return gram(f), n, h * w  # (B, N, N), N, M

    def score(self, representation, target) -> torch.Tensor:
        g, n, m = representation
        a, _, m_style = target
        if m_style != m:  # a style of another size: its Gram summed over M_style positions, scaled to M
            a = a * (m / m_style)
        return style_layer_loss(g, a, n, m)

    def blend(self, targets: list, weights: list[float]):
        _, n, m = targets[0]
        mixed = sum(w * (a if m_i == m else a * (m / m_i)) for (a, _, m_i), w in zip(targets, weights))
        return mixed, n, m

    def guided(self, f: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return f * guide.to(f.dtype)


# ---------------------------------------------------------------- mean and standard deviation


class MeanStdLoss(StyleLoss):
    """Li et al. 2017: E_l = (1/N) sum_i (mu_i(F) - mu_i(S))^2 + (sigma_i(F) - sigma_i(S))^2, population sigma.

    Several styles: mu and sigma of the target are the w_i-weighted means of the styles' mu_i and sigma_i.
    """

    blends = True

    def representation(self, f: torch.Tensor):
        # torch's std has gradient 0 where sigma = 0 (a filter that never fires), where sqrt's would be inf
        sigma, mu = torch.std_mean(at_least_float32(f), dim=(2, 3), correction=0)  # (B, N) each
        return mu, sigma

    def blend(self, targets: list, weights: list[float]):
        return (
            sum(w * mu for (mu, _), w in zip(targets, weights)),
            sum(w * sigma for (_, sigma), w in zip(targets, weights)),
        )

    def score(self, representation, target) -> torch.Tensor:
        (mu, sigma), (mu_s, sigma_s) = representation, target
        return ((mu - mu_s).pow(2) + (sigma - sigma_s).pow(2)).sum() / mu.shape[-1]


# ---------------------------------------------------------------- Gaussian Wasserstein-2


def moments(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, H, W) -> mean (B, N) and population covariance (B, N, N) of the N filters over the positions."""
    f = at_least_float32(f)
    m = f.shape[2] * f.shape[3]
    mu = f.mean(dim=(2, 3))  # (B, N)
    centred = f - mu[:, :, None, None]  # centred first: Sigma = G/M - mu mu^T would cancel in float32
    return mu, gram(centred) / m


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite (..., N, N) matrix, by eigendecomposition."""
    eigenvalues, vectors = torch.linalg.eigh(matrix)
    return (vectors * eigenvalues.clamp_min(0).sqrt()[..., None, :]) @ vectors.transpose(-1, -2)


class _SqrtEigenvalues(torch.autograd.Function):
    """sqrt(max(lambda, 0)) for the eigenvalues of a PSD matrix, exact in value. Its gradient 1 / (2 sqrt(lambda))
    is taken at max(lambda, 1e-6 lambda_max), so directions that rounding made (nearly) singular do not swamp it."""

    @staticmethod
    def forward(ctx, eigenvalues: torch.Tensor) -> torch.Tensor:
        floor = 1e-6 * eigenvalues.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(eigenvalues.dtype).tiny)
        ctx.save_for_backward(torch.maximum(eigenvalues, floor))
        return eigenvalues.clamp_min(0).sqrt()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (floored,) = ctx.saved_tensors
        return grad / (2 * floored.sqrt())


class W2Loss(StyleLoss):
    """Gaussian Wasserstein-2 distance between the filters' distributions of F and S, per layer:
    ||mu_F - mu_S||^2 + tr(Sigma_F + Sigma_S - 2 (Sigma_S^1/2 Sigma_F Sigma_S^1/2)^1/2).

    The N x N part runs in float64: the value is a difference of traces that nearly cancel as F approaches S.
    Sigma_S^1/2 is computed once (eigendecomposition, `eps` added to the diagonal first); each evaluation
    takes the eigenvalues of Sigma_S^1/2 Sigma_F Sigma_S^1/2 (their square roots sum to the trace term).
    Several styles: the target's mean and covariance are the w_i-weighted means of the styles' moments.
    """

    blends = True

    def __init__(self, layers: Mapping[str, float], eps: float = 0.0):
        super().__init__(layers)
        if not math.isfinite(eps):
            raise StyleLabError(f"loss.style.eps must be a finite number, not {eps}")
        if not eps >= 0:
            raise StyleLabError(f"loss.style.eps must be >= 0, not {eps}")
        self.eps = float(eps)

    def target_representation(self, f: torch.Tensor):
        return moments(f.double())  # once per image size: float64 from the start

    def blend(self, targets: list, weights: list[float]):
        return (
            sum(w * mu for (mu, _), w in zip(targets, weights)),
            sum(w * cov for (_, cov), w in zip(targets, weights)),
        )

    def finish_target(self, target):
        mu, cov = target
        cov = cov + self.eps * torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return mu, sqrtm_psd(cov), torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)

    def representation(self, f: torch.Tensor):
        b, n, h, w = f.shape
        if h * w >= n:
            mu, cov = moments(f)
            return mu, cov, None
        # fewer positions than filters: the centred responses, for the smaller M x M eigenproblem in score
        f = at_least_float32(f)
        mu = f.mean(dim=(2, 3))  # (B, N)
        return mu, None, (f - mu[:, :, None, None]).reshape(b, n, h * w)  # (B, N, M)

    def score(self, representation, target) -> torch.Tensor:
        (mu, cov, centred), (mu_s, root_s, trace_s) = representation, target
        if centred is None:
            cov = cov.double()
            cross = root_s @ cov @ root_s  # (B, N, N), symmetric PSD
            trace_f = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)
        else:  # Sigma_S^1/2 Sigma_F Sigma_S^1/2 = Y^T Y with Y = F_c^T Sigma_S^1/2 / sqrt(M); Y Y^T has its eigenvalues
            centred = centred.double()
            y = centred.transpose(1, 2) @ root_s / math.sqrt(centred.shape[-1])  # (B, M, N)
            cross = y @ y.transpose(1, 2)  # (B, M, M)
            trace_f = centred.pow(2).sum(dim=(1, 2)) / centred.shape[-1]
        trace_root = _SqrtEigenvalues.apply(torch.linalg.eigvalsh(cross)).sum(-1)  # tr(cross^1/2), (B,)
        value = (mu.double() - mu_s).pow(2).sum(-1) + trace_f + trace_s - 2 * trace_root
        return value.sum().to(mu.dtype)

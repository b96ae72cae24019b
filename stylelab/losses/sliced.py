"""Sliced Wasserstein (Heitz et al., CVPR 2021) as a style loss, per layer:

    E_l = (1/K) sum_k mean_m (sort(F v_k)_m - sort(S v_k)_m)^2, v_k random unit directions

K directions per layer (default K = N_l), redrawn every step from a generator seeded by (seed, step). The
step is bound by sorting K x M projections: on the CPU NumPy's SIMD sort does it, in threads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from stylelab.errors import StyleLabError
from stylelab.losses.base import at_least_float32
from stylelab.losses.style import StyleLoss

_SORT_POOL: ThreadPoolExecutor | None = None


def _row_chunks(rows: int) -> list[slice]:
    workers = max(1, min(torch.get_num_threads(), os.cpu_count() or 1, rows))
    bounds = np.linspace(0, rows, workers + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _on_cpu_threads(work, rows: int) -> None:
    """Run work(rows_slice) over the rows in threads: NumPy's sorts release the GIL but use one core each."""
    global _SORT_POOL
    chunks = _row_chunks(rows)
    if len(chunks) == 1:
        work(chunks[0])
        return
    if _SORT_POOL is None:
        _SORT_POOL = ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="stylelab-sort")
    list(_SORT_POOL.map(work, chunks))


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row of a (K, M) tensor sorted ascending. On the CPU NumPy's SIMD sort, ~8x faster than torch's."""
    if x.device.type != "cpu":
        return torch.sort(x, dim=1).values
    a = x.detach().contiguous().numpy()
    out = np.empty_like(a)

    def work(rows: slice) -> None:
        out[rows] = np.sort(a[rows], axis=1)

    _on_cpu_threads(work, a.shape[0])
    return torch.from_numpy(out)


def argsort_rows(x: torch.Tensor) -> torch.Tensor:
    """The permutation that sorts each row of a (K, M) tensor (int64).

    On the CPU, float32 rows are sorted as int64 keys (the float's bits made order-preserving, above the
    position): NumPy's SIMD sort of those is about twice as fast as its argsort.
    """
    if x.device.type != "cpu":
        return torch.argsort(x, dim=1)
    a = x.detach().contiguous().numpy()
    out = np.empty(a.shape, dtype=np.int64)
    positions = np.arange(a.shape[1], dtype=np.int64)

    def work(rows: slice) -> None:
        if a.dtype != np.float32 or a.shape[1] >= 2**31:
            out[rows] = np.argsort(a[rows], axis=1)
            return
        bits = a[rows].view(np.int32)
        # negative floats order backwards as integers: flipping all but the sign bit makes them order right
        keys = np.where(bits >= 0, bits, bits ^ np.int32(0x7FFFFFFF)).astype(np.int64)
        keys <<= 32
        keys |= positions
        keys.sort(axis=1)
        out[rows] = keys & 0xFFFFFFFF

    _on_cpu_threads(work, a.shape[0])
    return torch.from_numpy(out)


class _SortedDistance(torch.autograd.Function):
    """mean over rows k and positions m of (sort(x_k)_m - t_k,m)^2, x: (K, M), t: (K, M) sorted rows.

    Its gradient sends each difference back to the position it came from:
    dx_k[idx_k,m] = 2 (sort(x_k)_m - t_k,m) / (K M).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        idx = argsort_rows(x).to(x.device)
        diff = torch.gather(x, 1, idx) - t  # (K, M)
        ctx.save_for_backward(idx, diff)
        return diff.pow(2).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        idx, diff = ctx.saved_tensors
        sorted_grad = diff * (2.0 / diff.numel()) * grad
        return torch.zeros_like(diff).scatter_(1, idx, sorted_grad), None


def directions(seed: int, step: int, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Random unit directions (N, K) per layer for one step, from a generator seeded by (seed, step).

    Drawn on the CPU, so every device and every resumed run gets the same directions.
    """
    gen = torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + step) % 2**63)
    out = []
    for n, k in shapes:
        v = torch.randn(n, k, generator=gen, dtype=torch.float64)
        out.append(v / v.norm(dim=0, keepdim=True))
    return out


def _positions_rows(f: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Projections of the M positions of f (N, H, W) on the directions v (N, K), as K rows: (K, M)."""
    n, h, w = f.shape
    if f.stride(0) == 1 and n > 1:  # NHWC memory: (M, N) row-major, read without a copy
        return v.T @ f.permute(1, 2, 0).reshape(h * w, n).T
    return v.T @ f.reshape(n, h * w)


def resample_sorted(t: torch.Tensor, m: int) -> torch.Tensor:
    """Sorted rows (K, M_S) -> (K, m) values at the same quantiles (m + 1/2) / M, linearly interpolated."""
    if t.shape[1] == m:
        return t
    return F.interpolate(t[None], size=m, mode="linear", align_corners=False)[0]


class SlicedW2Loss(StyleLoss):
    """Sliced Wasserstein (Heitz et al. 2021): E_l = (1/K) sum_k mean_m (sort(F v_k)_m - sort(S v_k)_m)^2.

    K random unit directions per layer (default K = N_l), redrawn every step from a generator seeded by
    (seed, step): a run is reproducible and resumes exactly. A style with another number of positions has
    its sorted projections resampled to the generated image's M (linear interpolation between quantiles).
    """

    def __init__(self, layers: Mapping[str, float], projections: int | None = None, seed: int = 0):
        super().__init__(layers)
        if projections is not None and projections < 1:
            raise StyleLabError(f"loss.style.projections must be >= 1 (or null for N_l), not {projections}")
        self.projections, self.seed, self.step = projections, int(seed), 0

    def start_step(self, step: int) -> None:
        self.step = step

    def target_representation(self, f: torch.Tensor):
        return at_least_float32(f)  # (1, N, H, W): projected afresh every step

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        shapes = [(features[name].shape[1], self.projections or features[name].shape[1]) for name in self.layers]
        values = {}
        for name, v in zip(self.layers, directions(self.seed, self.step, shapes)):
            f = at_least_float32(features[name])  # (B, N, H, W)
            style = self.targets[name]  # (1, N, H', W')
            v = v.to(device=f.device, dtype=f.dtype)
            t = resample_sorted(sort_rows(_positions_rows(style[0], v)), f.shape[2] * f.shape[3])  # (K, M)
            values[name] = sum(_SortedDistance.apply(_positions_rows(f[i], v), t) for i in range(f.shape[0]))
        return values

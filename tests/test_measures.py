"""stylelab.measures against values computed by hand."""

import math

import pytest
import torch

from stylelab import measures


def flat(r: float, g: float, b: float, h: int = 12, w: int = 16) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float32)[:, None, None].expand(3, h, w).clone()


def test_psnr_of_a_uniform_error():
    # MSE 0.1^2 = 0.01: 10 log10(1 / 0.01) = 20 dB; identical images: infinite
    assert measures.psnr(flat(0, 0, 0), flat(0.1, 0.1, 0.1)) == pytest.approx(20.0)
    assert measures.psnr(flat(0.3, 0.2, 0.1), flat(0.3, 0.2, 0.1)) == math.inf


def test_edge_correlation_sees_outlines_not_brightness():
    vertical = torch.zeros(3, 32, 32)
    vertical[:, :, 16:] = 1
    horizontal = vertical.transpose(1, 2).clone()
    assert measures.edge_correlation(vertical, vertical) == pytest.approx(1.0)
    assert measures.edge_correlation(vertical, 0.5 * vertical + 0.2) == pytest.approx(1.0, abs=1e-6)  # same edges
    assert measures.edge_correlation(vertical, horizontal) < 0.1


def test_palette_distance_of_flat_colours_is_their_distance_and_ignores_layout():
    # two flat images: no covariance, so W2 is the distance of the means, sqrt(0.3^2 + 0.4^2) = 0.5
    assert measures.palette_distance(flat(0.1, 0.5, 0.2), flat(0.4, 0.1, 0.2)) == pytest.approx(0.5, abs=1e-6)
    x = torch.rand(3, 12, 16, generator=torch.Generator().manual_seed(0))
    shuffled = x.flatten(1)[:, torch.randperm(192, generator=torch.Generator().manual_seed(1))].reshape(3, 12, 16)
    assert measures.palette_distance(x, shuffled) == pytest.approx(0.0, abs=1e-6)


def test_chroma_error_by_hand():
    # pure red has I = 0.595716, Q = 0.211456 (NTSC); greys have none, whatever their brightness
    assert measures.chroma_error(flat(1, 0, 0), flat(0, 0, 0)) == pytest.approx((0.595716 + 0.211456) / 2)
    assert measures.chroma_error(flat(0.2, 0.2, 0.2), flat(0.9, 0.9, 0.9)) == pytest.approx(0.0, abs=1e-6)


def test_colour_mean_over_a_mask():
    x = flat(0, 0, 0)
    x[:, :, 8:] = torch.tensor([1.0, 0.5, 0.25])[:, None, None]
    right = torch.zeros(12, 16, dtype=torch.bool)
    right[:, 8:] = True
    assert measures.colour_mean(x, right).tolist() == [1.0, 0.5, 0.25]
    assert measures.colour_mean(x).tolist() == [0.5, 0.25, 0.125]

"""The Laplacian term of Li et al. 2017 against a hand computation (NumPy, written from the paper's formula)."""

import numpy as np
import pytest
import torch

from stylelab.errors import StyleLabError
from stylelab.losses import IMAGE, Laplacian, Objective, pooled_laplacian


def by_hand(image: np.ndarray, p: int) -> np.ndarray:
    """D_p(x): the p x p block means of each channel, then 4 x_ij - (up + down + left + right) at every pixel
    that has all four neighbours, summed over the three channels. image: (3, H, W) -> (H/p - 2, W/p - 2)."""
    c, h, w = image.shape
    pooled = image[:, : h // p * p, : w // p * p].reshape(c, h // p, p, w // p, p).mean(axis=(2, 4))
    centre = pooled[:, 1:-1, 1:-1]
    neighbours = pooled[:, :-2, 1:-1] + pooled[:, 2:, 1:-1] + pooled[:, 1:-1, :-2] + pooled[:, 1:-1, 2:]
    return (4 * centre - neighbours).sum(axis=0)


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, 18, 21, generator=gen, dtype=torch.float64), torch.rand(
        1, 3, 18, 21, generator=gen, dtype=torch.float64
    )


@pytest.mark.parametrize("p", [1, 2, 4])
def test_the_pooled_laplacian_is_the_hand_computation(images, p):
    x, _ = images
    got = pooled_laplacian(x, p)[0, 0].numpy()
    np.testing.assert_allclose(got, by_hand(x[0].numpy(), p), rtol=1e-12, atol=1e-12)
    assert got.shape == (18 // p - 2, 21 // p - 2)


def test_the_term_is_the_sum_of_squared_differences_per_pool_size(images):
    x, content = images
    term = Laplacian({"p2": 0.25, "p4": 0.75})
    term.set_target({IMAGE: content})
    values = term({IMAGE: x})
    for name, p in (("p2", 2), ("p4", 4)):
        expected = ((by_hand(content[0].numpy(), p) - by_hand(x[0].numpy(), p)) ** 2).sum()
        assert values[name].item() == pytest.approx(expected, rel=1e-6)
    # in an objective the pool sizes weigh as a term's layers do: 0.25 * L_2 + 0.75 * L_4
    goal = Objective({"laplacian": term}, {"laplacian": 10.0}, {"laplacian": "content"})
    evaluation = goal({}, x.float())
    expected = 10.0 * (0.25 * values["p2"] + 0.75 * values["p4"])
    assert evaluation.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert term({IMAGE: content})["p2"].item() == 0  # zero at the content image


def test_its_gradient_is_right(images):
    x, content = images
    term = Laplacian({"p2": 1.0})
    term.set_target({IMAGE: content})
    x = x[..., :8, :8].clone().requires_grad_(True)
    term.set_target({IMAGE: content[..., :8, :8]})
    torch.autograd.gradcheck(lambda y: term({IMAGE: y})["p2"], (x,))


def test_pool_sizes_are_named_and_checked():
    term = Laplacian({"p4": 1.0, "p16": 1.0})
    assert term.pools == {"p4": 4, "p16": 16} and term.reads == [] and term.min_side == 48
    for bad in ("relu1_1", "p0", "4", "p-2"):
        with pytest.raises(StyleLabError, match=r"layers are pool sizes written p<size> \(p4, p16\)"):
            Laplacian({bad: 1.0})

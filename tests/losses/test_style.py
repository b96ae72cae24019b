"""The four style losses: values by hand and against independent float64 computations, gradient checks,
zero at the style image, and sliced_w2's per-step directions."""

import numpy as np
import pytest
import scipy.linalg
import torch

from stylelab.losses import GramLoss, MeanStdLoss, SlicedW2Loss, W2Loss, gram, style_layer_loss
from stylelab.losses.sliced import argsort_rows, directions, resample_sorted, sort_rows
from stylelab.models.vgg import VGGFeatures
from stylelab.models.weights import features_state_dict, random_state_dict

LOSSES = {"gram": GramLoss, "mean_std": MeanStdLoss, "w2": W2Loss, "sliced_w2": SlicedW2Loss}


def value(loss_cls, f: torch.Tensor, s: torch.Tensor, **options) -> torch.Tensor:
    """E_l of generated responses f against style responses s, both (1, N, H, W), at one layer 'x'."""
    term = loss_cls({"x": 1.0}, **options)
    term.set_target({"x": s})
    return term({"x": f})["x"]


def by_filters(rows) -> torch.Tensor:
    """[[filter 1 over the positions], [filter 2 ...]] -> (1, N, 1, M)."""
    t = torch.tensor(rows, dtype=torch.float64)
    return t.view(1, t.shape[0], 1, t.shape[1])


# F: filter 1 = [1, 3] (mean 2, sigma 1), filter 2 = [2, 2] (mean 2, sigma 0)
# S: filter 1 = [0, 0] (mean 0, sigma 0), filter 2 = [1, 3] (mean 2, sigma 1)
F_HAND, S_HAND = by_filters([[1, 3], [2, 2]]), by_filters([[0, 0], [1, 3]])


# ---------------------------------------------------------------- gram


def test_gram_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # N=2 filters, M=2 positions
    torch.testing.assert_close(gram(f), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]))


def test_style_layer_loss_by_hand():
    g = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]])
    a = torch.zeros(1, 2, 2)
    # (25 + 121 + 121 + 625) / (4 * N^2 * M^2) with N = M = 2
    assert style_layer_loss(g, a, n=2, m=2).item() == pytest.approx(892 / 64)


def test_gram_loss_by_hand():
    # G = [[10, 8], [8, 8]], A = [[0, 0], [0, 10]]; (100 + 64 + 64 + 4) / (4 * 4 * 4) = 232 / 64
    assert value(GramLoss, F_HAND, S_HAND).item() == pytest.approx(232 / 64)


def test_gram_of_a_style_with_other_positions_is_scaled_to_m():
    # the style at twice the positions (each position twice): its Gram doubles, scaled back by M / M_style
    s_twice = torch.cat([S_HAND, S_HAND], dim=3)
    assert value(GramLoss, F_HAND, s_twice).item() == pytest.approx(232 / 64)


def test_gram_is_the_same_for_channels_last_memory():
    f = torch.randn(2, 8, 5, 7, generator=torch.Generator().manual_seed(4))
    nhwc = f.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gram(nhwc), gram(f))
    expected = torch.einsum("bihw,bjhw->bij", f, f)
    torch.testing.assert_close(gram(f), expected)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradient_is_exact(channels_last):
    f = torch.randn(1, 4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(gram, (f,))


# ---------------------------------------------------------------- mean_std


def test_mean_std_by_hand():
    # (1/N) [(2-0)^2 + (1-0)^2 + (2-2)^2 + (0-1)^2] = 6 / 2
    assert value(MeanStdLoss, F_HAND, S_HAND).item() == pytest.approx(3.0)


def test_mean_std_uses_the_population_sigma_and_ignores_positions_count():
    f = by_filters([[0, 2, 4, 6]])  # mean 3, population sigma sqrt(5)
    s = by_filters([[3, 3]])  # mean 3, sigma 0
    assert value(MeanStdLoss, f, s).item() == pytest.approx(5.0)


# ---------------------------------------------------------------- w2


def test_w2_by_hand():
    # Sigma_F = diag(1, 0), Sigma_S = diag(0, 1): commuting, so the trace term is tr(sqrt(0)) = 0 and
    # W2 = |(2, 2) - (0, 2)|^2 + tr(Sigma_F) + tr(Sigma_S) = 4 + 1 + 1
    assert value(W2Loss, F_HAND, S_HAND).item() == pytest.approx(6.0)


def exact_w2(f: np.ndarray, s: np.ndarray, sqrtm=None) -> float:
    """The Gaussian W2 of two (N, M) samples in float64 (NumPy, independent of the code under test); matrix
    square roots by eigendecomposition, or by `sqrtm` (SciPy's Schur method) where the matrices are regular."""

    def root(a):
        if sqrtm is not None:
            return sqrtm(a).real
        eigenvalues, vectors = np.linalg.eigh(a)
        return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T

    mu_f, mu_s = f.mean(1), s.mean(1)
    cov_f, cov_s = np.cov(f, bias=True), np.cov(s, bias=True)
    root_s = root(cov_s)
    cross = root(root_s @ cov_f @ root_s)
    return float(((mu_f - mu_s) ** 2).sum() + np.trace(cov_f + cov_s - 2 * cross))


def vgg_pair(layer: str, size: int, seed: int):
    """Responses of two random images at `layer` of a random-weight VGG19, float32 as a run sees them."""
    model = VGGFeatures([layer], features_state_dict(random_state_dict(seed=3), "test"))
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.rand(1, 3, size, size, generator=gen), torch.rand(1, 3, size, size, generator=gen)
    with torch.no_grad():
        return model(a)[layer], model(b)[layer]


@pytest.mark.parametrize("layer,size", [("relu1_1", 24), ("relu2_1", 32), ("relu3_1", 64), ("relu4_1", 208)])
def test_w2_logged_value_is_within_1e3_of_the_exact_float64_value(layer, size):
    f, s = vgg_pair(layer, size, seed=1)  # M = 576, 256, 256, 676 >= N = 64, 128, 256, 512
    n, m = f.shape[1], f.shape[2] * f.shape[3]
    assert m >= n
    exact = exact_w2(f[0].reshape(n, m).double().numpy(), s[0].reshape(n, m).double().numpy())
    logged = value(W2Loss, f.contiguous(memory_format=torch.channels_last), s).item()
    assert logged == pytest.approx(exact, rel=1e-3)


def test_w2_with_fewer_positions_than_filters_takes_the_small_eigenproblem():
    """M < N: the value from the M x M problem is exact, and its gradient is the N x N problem's."""
    from stylelab.losses.style import moments

    gen = torch.Generator().manual_seed(8)
    f = torch.randn(1, 6, 1, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    s = torch.randn(1, 6, 2, 10, generator=gen, dtype=torch.float64)
    exact = exact_w2(f.detach()[0].reshape(6, 4).numpy(), s[0].reshape(6, 20).numpy())
    term = W2Loss({"x": 1.0})
    term.set_target({"x": s})
    small = term({"x": f})["x"]
    assert term.representation(f)[2] is not None and small.item() == pytest.approx(exact, rel=1e-7)
    (grad_small,) = torch.autograd.grad(small, f)
    large = term.score((*moments(f), None), term.targets["x"])  # the N x N eigenproblem
    (grad_large,) = torch.autograd.grad(large, f)
    assert large.item() == pytest.approx(exact, rel=1e-7)
    torch.testing.assert_close(grad_small, grad_large, rtol=1e-6, atol=1e-9)


def test_w2_of_random_samples_matches_scipy():
    gen = torch.Generator().manual_seed(2)
    f, s = (
        torch.randn(1, 6, 5, 8, generator=gen, dtype=torch.float64),
        torch.randn(1, 6, 4, 10, generator=gen, dtype=torch.float64) * 2 + 1,
    )
    exact = exact_w2(f[0].reshape(6, 40).numpy(), s[0].reshape(6, 40).numpy(), sqrtm=scipy.linalg.sqrtm)
    assert value(W2Loss, f, s).item() == pytest.approx(exact, rel=1e-9)


# ---------------------------------------------------------------- sliced_w2


def test_sliced_w2_by_hand_in_one_dimension():
    # one filter: every direction is +1 or -1, and either way the sorted differences are (1, 1, -2)
    f, s = by_filters([[3, 1, 2]]), by_filters([[0, 5, 1]])
    assert value(SlicedW2Loss, f, s).item() == pytest.approx(2.0)
    assert value(SlicedW2Loss, f, s, projections=4).item() == pytest.approx(2.0)


def test_sliced_w2_resamples_a_style_with_other_positions():
    # style sorted (0, 4) at 2 positions, read at the quantiles (m + 1/2) / 4 of 4 positions: (0, 1, 3, 4)
    s = by_filters([[4, 0]])
    assert value(SlicedW2Loss, by_filters([[3, 0, 4, 1]]), s).item() == pytest.approx(0.0, abs=1e-12)
    assert value(SlicedW2Loss, by_filters([[1, 1, 1, 1]]), s).item() == pytest.approx((1 + 0 + 4 + 9) / 4)
    torch.testing.assert_close(resample_sorted(torch.tensor([[0.0, 4.0]]), 4), torch.tensor([[0.0, 1.0, 3.0, 4.0]]))


def test_sliced_w2_matches_a_direct_computation():
    gen = torch.Generator().manual_seed(3)
    f, s = torch.randn(1, 5, 4, 6, generator=gen), torch.randn(1, 5, 4, 6, generator=gen)
    term = SlicedW2Loss({"x": 1.0}, projections=7, seed=11)
    term.set_target({"x": s})
    term.start_step(4)
    (v,) = directions(11, 4, [(5, 7)])  # (N, K) unit columns
    v = v.float()
    x = np.sort((v.T @ f[0].reshape(5, 24)).numpy(), axis=1)
    y = np.sort((v.T @ s[0].reshape(5, 24)).numpy(), axis=1)
    assert term({"x": f})["x"].item() == pytest.approx(float(((x - y) ** 2).mean()), rel=1e-5)
    assert torch.allclose(v.norm(dim=0), torch.ones(7))


def test_sliced_w2_directions_depend_on_seed_and_step_only():
    assert torch.equal(directions(0, 3, [(4, 4)])[0], directions(0, 3, [(4, 4)])[0])
    assert not torch.equal(directions(0, 3, [(4, 4)])[0], directions(0, 4, [(4, 4)])[0])
    assert not torch.equal(directions(0, 3, [(4, 4)])[0], directions(1, 3, [(4, 4)])[0])
    gen = torch.Generator().manual_seed(9)
    f, s = torch.randn(1, 4, 3, 3, generator=gen), torch.randn(1, 4, 3, 3, generator=gen)
    term = SlicedW2Loss({"x": 1.0}, seed=0)
    term.set_target({"x": s})
    term.start_step(2)
    first = term({"x": f})["x"]
    assert torch.equal(term({"x": f})["x"], first)  # a line search's evaluations within one step agree
    term.start_step(3)
    assert not torch.equal(term({"x": f})["x"], first)


def test_numpy_sorts_agree_with_torch():
    x = torch.randn(5, 1001, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sort_rows(x), torch.sort(x, dim=1).values)
    torch.testing.assert_close(torch.gather(x, 1, argsort_rows(x)), torch.sort(x, dim=1).values)


# ---------------------------------------------------------------- all four


@pytest.mark.parametrize("name", LOSSES)
def test_zero_when_the_generated_image_is_the_style_image(name):
    f = vgg_pair("relu2_1", 32, seed=4)[0]
    got = value(LOSSES[name], f, f.clone()).item()
    if name == "w2":  # a difference of traces: zero up to rounding, relative to their size
        assert abs(got) <= 1e-4 * value(W2Loss, f, torch.zeros_like(f)).item()
    else:
        assert got == 0.0


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_check(name):
    gen = torch.Generator().manual_seed(6)
    f = torch.randn(1, 3, 3, 4, dtype=torch.float64, generator=gen)  # M = 12 >= N = 3: full-rank covariances
    s = torch.randn(1, 3, 4, 4, dtype=torch.float64, generator=gen) * 1.5 + 0.5
    term = LOSSES[name]({"x": 1.0})
    term.set_target({"x": s})
    assert torch.autograd.gradcheck(lambda x: term({"x": x})["x"], (f.requires_grad_(True),))


@pytest.mark.parametrize("name", LOSSES)
def test_a_descent_step_lowers_the_loss(name):
    f, s = vgg_pair("relu1_1", 24, seed=7)
    term = LOSSES[name]({"x": 1.0})
    term.set_target({"x": s})
    f = f.clone().requires_grad_(True)
    before = term({"x": f})["x"]
    before.backward()
    with torch.no_grad():
        after = term({"x": f - 1e-3 * f.grad / f.grad.abs().max()})["x"]
    assert after < before


# ---------------------------------------------------------------- several styles, regions


def test_gram_blends_styles_as_the_weighted_sum_of_their_grams():
    gen = torch.Generator().manual_seed(10)
    f, a, b = (torch.randn(1, 3, 2, 3, generator=gen) for _ in range(3))
    b_twice = torch.cat([b, b], dim=3)  # another size: its Gram doubles, scaled back to M
    term = GramLoss({"x": 1.0})
    term.set_targets([{"x": a}, {"x": b_twice}], [0.25, 0.75])
    expected = style_layer_loss(gram(f), 0.25 * gram(a) + 0.75 * gram(b), 3, 6)
    torch.testing.assert_close(term({"x": f})["x"], expected)
    term.set_targets([{"x": a}, {"x": b}], [1.0, 0.0])  # all weight on the first: exactly the first alone
    assert torch.equal(term({"x": f})["x"], value(GramLoss, f, a))


@pytest.mark.parametrize("name", ["mean_std", "w2"])
def test_moment_losses_blend_their_moments(name):
    gen = torch.Generator().manual_seed(11)
    f, a, b = (torch.randn(1, 3, 4, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    term = LOSSES[name]({"x": 1.0})
    term.set_targets([{"x": a}, {"x": b}], [1.0, 0.0])
    assert torch.equal(term({"x": f})["x"], value(LOSSES[name], f, a))
    term.set_targets([{"x": a}, {"x": b}], [0.5, 0.5])
    both = term({"x": f})["x"]
    assert both != value(LOSSES[name], f, a) and both != value(LOSSES[name], f, b)


def test_sliced_w2_does_not_blend():
    assert not SlicedW2Loss.blends and not MeanStdLoss.guides
    term = SlicedW2Loss({"x": 1.0})
    with pytest.raises(Exception, match="cannot blend several styles"):
        term.set_targets([{"x": torch.rand(1, 2, 2, 2)}, {"x": torch.rand(1, 2, 2, 2)}], [0.5, 0.5])


def test_a_mask_covering_everything_gives_exactly_the_unguided_gram_loss():
    gen = torch.Generator().manual_seed(12)
    f, s = torch.randn(1, 4, 3, 5, generator=gen), torch.randn(1, 4, 3, 5, generator=gen)
    term = GramLoss({"x": 1.0})
    term.set_targets([{"x": s}], guides=[{"x": torch.ones(1, 1, 3, 5)}])
    assert torch.equal(term({"x": f})["x"], value(GramLoss, f, s))


def test_guided_gram_by_regions_by_hand():
    gen = torch.Generator().manual_seed(13)
    f, s1, s2 = (torch.randn(1, 2, 2, 2, generator=gen) for _ in range(3))
    left = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(1, 1, 2, 2) * 2**0.5  # normalised: mean(T^2) = 1
    right = left.flip(-1)
    term = GramLoss({"x": 1.0})
    term.set_targets([{"x": s1}, {"x": s2}], guides=[{"x": left}, {"x": right}])
    expected = style_layer_loss(gram(f * left), gram(s1), 2, 4) + style_layer_loss(gram(f * right), gram(s2), 2, 4)
    torch.testing.assert_close(term({"x": f})["x"], expected)
    # each style restricted to a part of its own image
    term.set_targets([{"x": s1}, {"x": s2}], guides=[{"x": left}, {"x": right}], style_guides=[{"x": right}, None])
    expected = style_layer_loss(gram(f * left), gram(s1 * right), 2, 4) + style_layer_loss(
        gram(f * right), gram(s2), 2, 4
    )
    torch.testing.assert_close(term({"x": f})["x"], expected)
    # a region with no position at this layer adds nothing
    term.set_targets([{"x": s1}, {"x": s2}], guides=[{"x": left}, {"x": None}])
    torch.testing.assert_close(term({"x": f})["x"], style_layer_loss(gram(f * left), gram(s1), 2, 4))

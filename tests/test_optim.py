"""stylelab's L-BFGS (ScaleFreeLBFGS) against hand computations and the property it exists for: no step
length depends on the loss's scale, so a loss 2^40 times larger takes exactly the same steps."""

import pytest
import torch

from stylelab.errors import StyleLabError
from stylelab.optim import LBFGS, Adam, ScaleFreeLBFGS, TorchLBFGS


def minimise(make, f, x0: torch.Tensor, steps: int) -> tuple[list[float], torch.Tensor]:
    """Losses at every evaluation and the last point of `steps` optimizer steps on f."""
    x = x0.clone().requires_grad_(True)
    opt, losses = make([x]), []

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    for _ in range(steps):
        opt.step(closure)
    return losses, x.detach()


def quadratic(scale: float):
    """f(x) = scale * 1/2 sum_i a_i (x_i - 1)^2, an ill-conditioned bowl with its minimum 0 at x = 1."""
    a = torch.logspace(0, 3, 64, dtype=torch.float64)
    return lambda x: scale * 0.5 * (a * (x - 1) ** 2).sum()


def test_the_first_step_has_unit_length():
    x0 = torch.zeros(64, dtype=torch.float64)
    _, x = minimise(lambda p: ScaleFreeLBFGS(p), quadratic(1.0), x0, steps=1)
    assert float((x - x0).norm()) == pytest.approx(1.0, rel=1e-12)


def test_a_loss_2_to_the_40_times_larger_takes_exactly_the_same_steps():
    # powers of two scale floats exactly, so a scale-free method gives bit-identical points
    x0 = torch.zeros(64, dtype=torch.float64)
    small, x_small = minimise(lambda p: ScaleFreeLBFGS(p), quadratic(1.0), x0, steps=25)
    large, x_large = minimise(lambda p: ScaleFreeLBFGS(p), quadratic(2.0**40), x0, steps=25)
    assert torch.equal(x_small, x_large)
    assert [v * 2.0**40 for v in small] == large
    # so do 2^-30 times smaller losses, where torch's L-BFGS does not: its first step is min(1, 1/|g|_1) long
    # and its curvature guard is ys > 1e-10, both in the loss's units
    tiny, x_tiny = minimise(lambda p: ScaleFreeLBFGS(p), quadratic(2.0**-30), x0, steps=25)
    assert torch.equal(x_small, x_tiny)
    _, t_small = minimise(lambda p: torch.optim.LBFGS(p, max_iter=1), quadratic(1.0), x0, steps=25)
    _, t_tiny = minimise(lambda p: torch.optim.LBFGS(p, max_iter=1), quadratic(2.0**-30), x0, steps=25)
    assert not torch.equal(t_small, t_tiny)


def test_it_converges_on_an_ill_conditioned_bowl():
    losses, x = minimise(lambda p: ScaleFreeLBFGS(p), quadratic(1e7), torch.zeros(64, dtype=torch.float64), 60)
    assert losses[-1] < 1e-6 * losses[0]
    assert float((x - 1).abs().max()) < 0.1


def test_a_step_that_raised_the_loss_is_taken_back_to_the_quadratics_minimum():
    # f(x) = (x - 1)^2 from 0: the first step is unit length times lr = 100, to x = 100 (f = 9801 > 1). The
    # quadratic through f(0) = 1, f'(0) along d = -2 and f(100) = 9801 has its minimum at t = 1: x = 1
    f = lambda x: ((x - 1) ** 2).sum()  # noqa: E731
    losses, x = minimise(lambda p: ScaleFreeLBFGS(p, lr=100.0), f, torch.zeros(1, dtype=torch.float64), steps=2)
    assert losses == [1.0, 9801.0]
    assert float(x) == 1.0
    # torch's first step also goes to 100 (t = min(1, 1/|g|_1) lr = 50 along -g = 2), and stays there
    _, x = minimise(lambda p: torch.optim.LBFGS(p, lr=100.0, max_iter=1), f, torch.zeros(1, dtype=torch.float64), 1)
    assert float(x) == 100.0


def test_no_curvature_pair_from_a_rejected_point():
    f = lambda x: ((x - 1) ** 2).sum()  # noqa: E731
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = ScaleFreeLBFGS([x], lr=100.0)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    opt.step(closure)
    opt.step(closure)  # at x = 100: rejected, back to x = 1
    assert opt.state[x]["old_dirs"] == [] and float(x.detach()) == 1.0 and opt.state[x]["t"] == 1.0


def test_accepted_steps_keep_their_curvature_pairs():
    x = torch.zeros(64, dtype=torch.float64, requires_grad=True)
    opt, f = ScaleFreeLBFGS([x], history_size=3), quadratic(1.0)

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    for _ in range(6):
        opt.step(closure)
    state = opt.state[x]
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) == 3  # the history's length
    for y, s, ro in zip(state["old_dirs"], state["old_stps"], state["ro"]):
        assert float(ro) == pytest.approx(1 / float(y.dot(s)))


def test_the_options_build_their_optimizers():
    x = torch.zeros(3, requires_grad=True)
    assert isinstance(LBFGS(history_size=5)([x]), ScaleFreeLBFGS)
    assert type(TorchLBFGS()([x])) is torch.optim.LBFGS
    assert type(Adam()([x])) is torch.optim.Adam
    with pytest.raises(ValueError, match="one tensor"):
        ScaleFreeLBFGS([x, torch.zeros(2, requires_grad=True)])


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: LBFGS(lr=0), "optimizer.lr must be > 0, not 0"),
        (lambda: LBFGS(history_size=0), "optimizer.history_size must be >= 1, not 0"),
        (lambda: TorchLBFGS(tolerance_grad=-1), "optimizer.tolerance_grad must be >= 0, not -1"),
        (lambda: Adam(lr=float("nan")), "optimizer.lr must be a finite number, not nan"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(make, message):
    with pytest.raises(StyleLabError) as caught:
        make()
    assert str(caught.value) == message

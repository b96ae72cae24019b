"""The optimisation loop: it descends, runs every step asked for, numbers its steps, stops when told."""

import pytest
import torch

from stylelab import inits
from stylelab.errors import StyleLabError
from stylelab.extractors.vgg import VGGFeatures, features_state_dict, random_state_dict
from stylelab.loop import optimize
from stylelab.losses import FeatureReconstruction, Objective, SlicedW2Loss
from stylelab.optim import LBFGS, Adam


@pytest.fixture(scope="module")
def state():
    return features_state_dict(random_state_dict(seed=11), "test")


def smooth_image(h=32, w=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


class Recorder:
    def __init__(self):
        self.losses, self.images = [], []

    def on_losses(self, step, evaluation):
        self.losses.append((step, evaluation.total.item()))

    def on_image(self, step, image):
        self.images.append(step)


def content_problem(state, layer="relu1_1", scale=1.0):
    model = VGGFeatures([layer], state)
    target = smooth_image()
    term = FeatureReconstruction({layer: 1.0})
    with torch.no_grad():
        term.set_target(model(target))
    return model, Objective({"content": term}, {"content": scale}), target


def noise(like, seed=0):
    return inits.noise(like, like, seed=seed)


def test_content_reconstruction_from_noise_approaches_the_image(state):
    model, loss, target = content_problem(state)
    start = noise(target, seed=0)
    result = optimize(start, model, loss, steps=60, optimizer=LBFGS())
    before = (start - target).abs().mean().item()
    after = (result.image - target).abs().mean().item()
    assert after < 0.2 * before, (before, after)
    assert result.final.total.item() < 1e-2 * loss(model(start), start).total.item()


@pytest.mark.parametrize("optimizer", [LBFGS(), Adam(lr=0.05)], ids=["lbfgs", "adam"])
def test_a_step_lowers_the_loss(state, optimizer):
    model, loss, target = content_problem(state, "relu2_1")
    start = noise(target, seed=3)
    result = optimize(start, model, loss, steps=3, optimizer=optimizer)
    assert result.final.total.item() < loss(model(start), start).total.item()


def test_lbfgs_runs_every_step_asked_even_with_tiny_losses(state):
    # torch's LBFGS defaults (tolerance_grad=1e-7) would stop at once on a loss this small
    model, loss, target = content_problem(state, scale=1e-12)
    rec = Recorder()
    result = optimize(noise(target), model, loss, steps=7, optimizer=LBFGS(), callbacks=[rec])
    assert result.steps_done == 7 and result.stopped is None
    assert result.evaluations == 7  # one loss evaluation per L-BFGS iteration, no line search
    assert [s for s, _ in rec.losses] == list(range(8))  # step 0..7, the last from the final image
    assert rec.images == list(range(8))


def test_tolerance_stop_is_reported(state):
    model, loss, target = content_problem(state, scale=1e-12)
    spec = LBFGS(tolerance_grad=1.0)
    result = optimize(noise(target), model, loss, steps=50, optimizer=spec)
    assert result.steps_done == 1
    assert "stopped after 1 steps: largest gradient <= optimizer.tolerance_grad=1.0" == result.stopped


def test_strong_wolfe_line_search_evaluates_more(state):
    model, loss, target = content_problem(state)
    spec = LBFGS(line_search="strong_wolfe")
    result = optimize(noise(target), model, loss, steps=3, optimizer=spec)
    assert result.steps_done == 3 and result.evaluations > 3


def test_interrupt_keeps_the_current_image(state):
    model, loss, target = content_problem(state)

    class StopAt3(Recorder):
        def on_image(self, step, image):
            if step == 3:
                raise KeyboardInterrupt

    result = optimize(noise(target), model, loss, steps=50, optimizer=LBFGS(), callbacks=[StopAt3()])
    assert result.interrupted and result.steps_done == 3
    assert result.stopped == "interrupted after 3 steps"


def test_initial_images(tmp_path):
    from conftest import make_image

    content, style = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    a = inits.noise(content, style, seed=1)
    assert torch.equal(a, inits.noise(content, style, seed=1))
    assert not torch.equal(a, inits.noise(content, style, seed=2))
    assert a.shape == content.shape and 0 <= a.min() and a.max() <= 1
    assert torch.equal(inits.from_content(content, style, seed=0), content)
    assert torch.equal(inits.from_style(content, style, seed=0), style)
    picture = inits.from_file(content, style, seed=0, path=str(make_image(tmp_path / "x.png", size=(16, 16))))
    assert picture.shape == (1, 3, 8, 8) and 0 < picture.mean() < 1
    with pytest.raises(StyleLabError, match="init.path"):
        inits.from_file(content, style, seed=0, path=None)


def test_any_torch_optimizer_plugs_in(state):
    """An optimizer is anything that makes a torch optimizer from the parameters (tolerances optional)."""
    import functools

    model, loss, target = content_problem(state)
    start = noise(target, seed=3)
    result = optimize(start, model, loss, steps=3, optimizer=functools.partial(torch.optim.SGD, lr=1e-3))
    assert result.steps_done == 3 and result.final.total.item() < loss(model(start), start).total.item()


def test_a_term_is_told_each_step_before_its_evaluations(state):
    model = VGGFeatures(["relu1_1"], state)
    target = smooth_image()
    term = SlicedW2Loss({"relu1_1": 1.0})
    term.set_target(model(target).copy())
    seen = []
    original = term.start_step
    term.start_step = lambda step: (seen.append(step), original(step))
    optimize(noise(target), model, Objective({"style": term}, {"style": 1.0}), steps=3, optimizer=LBFGS())
    assert seen == [0, 1, 2, 3]  # each update's step, then the final image's

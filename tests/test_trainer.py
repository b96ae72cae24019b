import pytest
import torch

from stylelab.errors import StyleLabError
from stylelab.losses import StyleTransferLoss
from stylelab.trainer import OptimizerSpec, initial_image, optimize
from stylelab.vgg import VGGFeatures, features_state_dict, random_state_dict


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

    def on_losses(self, step, terms):
        self.losses.append((step, terms.total.item()))

    def on_image(self, step, image):
        self.images.append(step)


def content_problem(state, layer="relu1_1", scale=1.0):
    model = VGGFeatures([layer], state)
    target = smooth_image()
    with torch.no_grad():
        loss = StyleTransferLoss(model(target), {}, {layer: 1.0}, {}, alpha=scale, beta=0.0)
    return model, loss, target


def test_content_reconstruction_from_noise_approaches_the_image(state):
    model, loss, target = content_problem(state)
    noise = initial_image("noise", target, target, seed=0)
    result = optimize(noise, model, loss, steps=60, optimizer=OptimizerSpec("lbfgs"))
    before = (noise - target).abs().mean().item()
    after = (result.image - target).abs().mean().item()
    assert after < 0.2 * before, (before, after)
    assert result.final.total.item() < 1e-2 * loss(model(noise), noise).total.item()


@pytest.mark.parametrize("name,lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_a_step_lowers_the_loss(state, name, lr):
    model, loss, target = content_problem(state, "relu2_1")
    start = initial_image("noise", target, target, seed=3)
    result = optimize(start, model, loss, steps=3, optimizer=OptimizerSpec(name, lr=lr))
    assert result.final.total.item() < loss(model(start), start).total.item()


def test_lbfgs_runs_every_step_asked_even_with_tiny_losses(state):
    # torch's LBFGS defaults (tolerance_grad=1e-7) would stop at once on a loss this small
    model, loss, target = content_problem(state, scale=1e-12)
    rec = Recorder()
    result = optimize(initial_image("noise", target, target), model, loss, steps=7, callbacks=[rec])
    assert result.steps_done == 7 and result.stopped is None
    assert result.evaluations == 7  # one loss evaluation per L-BFGS iteration, no line search
    assert [s for s, _ in rec.losses] == list(range(8))  # step 0..7, the last from the final image
    assert rec.images == list(range(8))


def test_tolerance_stop_is_reported(state):
    model, loss, target = content_problem(state, scale=1e-12)
    spec = OptimizerSpec("lbfgs", tolerance_grad=1.0)
    result = optimize(initial_image("noise", target, target), model, loss, steps=50, optimizer=spec)
    assert result.steps_done == 1
    assert "stopped after 1 steps: largest gradient <= optimizer.tolerance_grad=1.0" == result.stopped


def test_strong_wolfe_line_search_evaluates_more(state):
    model, loss, target = content_problem(state)
    spec = OptimizerSpec("lbfgs", line_search="strong_wolfe")
    result = optimize(initial_image("noise", target, target), model, loss, steps=3, optimizer=spec)
    assert result.steps_done == 3 and result.evaluations > 3


def test_interrupt_keeps_the_current_image(state):
    model, loss, target = content_problem(state)

    class StopAt3(Recorder):
        def on_image(self, step, image):
            if step == 3:
                raise KeyboardInterrupt

    result = optimize(initial_image("noise", target, target), model, loss, steps=50, callbacks=[StopAt3()])
    assert result.interrupted and result.steps_done == 3
    assert result.stopped == "interrupted after 3 steps"


def test_initial_images():
    content, style = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    a = initial_image("noise", content, style, seed=1)
    assert torch.equal(a, initial_image("noise", content, style, seed=1))
    assert not torch.equal(a, initial_image("noise", content, style, seed=2))
    assert a.shape == content.shape and 0 <= a.min() and a.max() <= 1
    assert torch.equal(initial_image("content", content, style), content)
    assert torch.equal(initial_image("style", content, style), style)
    with pytest.raises(StyleLabError, match="init.path"):
        initial_image("image", content, style)


def test_unknown_optimizer(state):
    model, loss, target = content_problem(state)
    with pytest.raises(StyleLabError, match="choose lbfgs or adam"):
        optimize(target, model, loss, steps=1, optimizer=OptimizerSpec("sgd"))

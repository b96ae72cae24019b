"""One run, top to bottom (stylelab.loop.run on plain parts): it descends, runs every step asked for, numbers
its steps across levels, tells its observers, stops when told, and stops at once when the loss diverges."""

import functools

import pytest
import torch

from stylelab import inits
from stylelab.build import Inputs, Level, Parts, Watch
from stylelab.controls.colour import Colour
from stylelab.errors import StyleLabError
from stylelab.loop import Diverged, run
from stylelab.losses import FeatureReconstruction, Objective, SlicedW2Loss
from stylelab.models.vgg import VGG
from stylelab.observers import Observer
from stylelab.optim import LBFGS, Adam, TorchLBFGS


def smooth_image(h=32, w=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]


PICTURES = {"content": smooth_image(), "style": smooth_image(seed=1)}


def parts(terms, weights, targets, *, optimizer=None, steps=3, levels=None, init=inits.noise, checkpoint_every=0):
    """The parts of a run on random VGG19 weights (tests only), built by hand as a library user would."""
    return Parts(
        VGG("vgg19", weights="random"),
        Objective(terms, weights, targets),
        optimizer or LBFGS(),
        init,
        Colour(),
        levels or [Level(32, 0, steps)],
        Inputs("content", ["style"], [1.0], None, None, False, "simple", 1.0),
        "cpu",
        0,
        False,
        False,
        False,
        checkpoint_every,
        Watch(progress=False),
    )


def content_only(layer="relu1_1", scale=1.0, **kwargs):
    return parts({"content": FeatureReconstruction({layer: 1.0})}, {"content": scale}, {"content": "content"}, **kwargs)


class Recorder(Observer):
    def __init__(self):
        self.losses, self.images, self.levels = [], [], []

    def on_level(self, k, level, images, step):
        self.levels.append((k, step, tuple(images.content.shape[-2:])))

    def on_losses(self, step, evaluation):
        self.losses.append((step, evaluation.total.item()))

    def on_image(self, step, image):
        self.images.append(step)

    def on_level_end(self, k, level, step, evaluation, image):
        self.losses.append((step, evaluation.total.item()))


def go(p, **kwargs):
    rec = Recorder()
    return run(p, pictures=PICTURES, observers=[rec], stop=lambda: None, **kwargs), rec


def test_content_reconstruction_from_noise_approaches_the_image():
    result, rec = go(content_only(steps=60))
    start = inits.noise(PICTURES["content"][None], None, seed=0)
    before = (start - PICTURES["content"]).abs().mean().item()
    after = (result.image - PICTURES["content"]).abs().mean().item()
    assert after < 0.2 * before, (before, after)
    assert result.final.total.item() < 1e-2 * rec.losses[0][1]


@pytest.mark.parametrize("optimizer", [LBFGS(), TorchLBFGS(), Adam(lr=0.05)], ids=["lbfgs", "lbfgs_torch", "adam"])
def test_a_step_lowers_the_loss(optimizer):
    result, rec = go(content_only("relu2_1", optimizer=optimizer))
    assert result.final.total.item() < rec.losses[0][1]


def test_lbfgs_runs_every_step_asked_even_with_tiny_losses():
    # torch's LBFGS defaults (tolerance_grad=1e-7) would stop at once on a loss this small
    result, rec = go(content_only(scale=1e-12, steps=7))
    assert result.steps_done == 7 and result.stopped is None
    assert result.evaluations == 7  # one loss evaluation per L-BFGS iteration, no line search
    assert [s for s, _ in rec.losses] == list(range(8))  # step 0..7, the last from the final image
    assert rec.images == list(range(8)) and rec.levels == [(0, 0, (32, 32))]


def test_tolerance_stop_is_reported():
    result, _ = go(content_only(scale=1e-12, steps=50, optimizer=LBFGS(tolerance_grad=1.0)))
    assert result.steps_done == 1
    assert "stopped after 1 steps: largest gradient <= optimizer.tolerance_grad=1.0" == result.stopped


def test_strong_wolfe_line_search_evaluates_more():
    result, _ = go(content_only(optimizer=TorchLBFGS(line_search="strong_wolfe")))
    assert result.steps_done == 3 and result.evaluations > 3


def test_interrupt_keeps_the_current_image():
    class StopAt3(Recorder):
        def on_image(self, step, image):
            if step == 3:
                raise KeyboardInterrupt

    result = run(content_only(steps=50), pictures=PICTURES, observers=[StopAt3()], stop=lambda: None)
    assert result.interrupted and result.steps_done == 3 and result.state is None  # cut in half: no checkpoint
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


def test_any_torch_optimizer_plugs_in():
    """An optimizer is anything that makes a torch optimizer from the parameters (tolerances optional)."""
    result, rec = go(content_only(optimizer=functools.partial(torch.optim.SGD, lr=1e-3)))
    assert result.steps_done == 3 and result.final.total.item() < rec.losses[0][1]


def test_a_term_is_told_each_step_before_its_evaluations():
    term = SlicedW2Loss({"relu1_1": 1.0})
    seen = []
    original = term.start_step
    term.start_step = lambda step: (seen.append(step), original(step))
    go(parts({"style": term}, {"style": 1.0}, {"style": "style"}))
    assert seen == [0, 1, 2, 3]  # each update's step, then the final image's


def test_levels_count_their_steps_on_and_hand_over_at_their_own_size():
    p = content_only(levels=[Level(16, 0, 3), Level(32, 3, 5)])
    result, rec = go(p)
    assert result.steps_done == 5 and result.image.shape == (1, 3, 32, 32)
    assert rec.levels == [(0, 0, (16, 16)), (1, 3, (32, 32))]
    # step 3 twice: the coarse level's last image and losses, then the fine level's first, each at its size
    assert rec.images == [0, 1, 2, 3, 3, 4, 5]
    assert [s for s, _ in rec.losses] == [0, 1, 2, 3, 3, 4, 5]


def test_a_diverging_loss_stops_at_once_and_keeps_the_last_finite_image(tmp_path):
    """Adam with a learning rate of 1e30: the first update makes the loss infinite; the run stops there with
    one sentence and keeps the initial image, the last whose loss was finite, and its checkpoint."""
    p = content_only(steps=20, optimizer=Adam(lr=1e30))
    with pytest.raises(Diverged) as err:
        run(p, tmp_path, pictures=PICTURES, stop=lambda: None)
    message = str(err.value)
    assert message.startswith("the loss became ") and " at step 1, so the optimisation diverged" in message
    assert "final.png and checkpoint.pt hold step 0, the last image whose loss was finite" in message
    start = inits.noise(PICTURES["content"][None], None, seed=0)
    assert torch.equal(err.value.result.image, start) and err.value.result.steps_done == 0
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 0 and torch.equal(saved["image"], start)
    from stylelab.io.images import load_image

    assert (load_image(tmp_path / "final.png") - start[0]).abs().max() <= 0.5 / 255 + 1e-6  # not black


class Ends(Observer):
    def __init__(self):
        self.ends, self.closed = [], 0

    def on_run_end(self, end):
        self.ends.append(end)

    def close(self):
        self.closed += 1


def test_observers_are_told_how_the_run_ended_once_then_closed():
    ends = Ends()
    result = run(content_only(steps=4), pictures=PICTURES, observers=[ends], stop=lambda: None)
    (end,) = ends.ends
    assert ends.closed == 1 and end.step == 4 and end.diverged is None and not end.recoloured
    assert end.final.total.item() == result.final.total.item() and torch.equal(end.picture, result.image)
    assert end.settings == {} and end.seconds_per_step == result.seconds_per_step  # plain parts: no settings
    diverging = Ends()
    with pytest.raises(Diverged):
        run(content_only(steps=5, optimizer=Adam(lr=1e30)), pictures=PICTURES, observers=[diverging], stop=lambda: None)
    (end,) = diverging.ends
    assert end.final is None and end.diverged.startswith("the loss became ") and diverging.closed == 1

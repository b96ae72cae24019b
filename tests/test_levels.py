"""stylelab.levels: what a run reads (once, at full size) and each level's images and targets."""

import pytest
import torch

from stylelab import levels
from stylelab.build import Inputs, Level
from stylelab.controls.colour import Colour, Luminance
from stylelab.errors import StyleLabError
from stylelab.losses import FeatureReconstruction, GramLoss, Objective
from stylelab.losses.style import gram
from stylelab.models.vgg import VGG

PICTURES = {
    "content": torch.rand(3, 30, 40, generator=torch.Generator().manual_seed(0)),
    "style": torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(1)),
}


def inputs(style_scale=1.0):
    return Inputs("content", ["style"], [1.0], None, None, False, "simple", style_scale)


def network(layers):
    model = VGG("vgg19", weights="random")
    with pytest.warns(UserWarning, match="random weights"):
        weights = model.load(seed=0, progress=False)
    return model, model.extractor(layers, weights, "cpu")


def test_read_takes_given_pictures_and_lets_the_colour_control_prepare_them():
    read = levels.read_pictures(inputs(), Luminance(), PICTURES)
    assert torch.equal(read.original, PICTURES["content"])
    assert torch.equal(read.content[0], read.content[1]) and torch.equal(read.content[1], read.content[2])
    assert read.size_of(20) == (15, 20) and read.masks == []
    levels.fetch(inputs(), VGG("vgg19", weights="random"), PICTURES, progress=False)  # nothing to fetch


def test_a_level_sets_every_target_at_its_size_from_the_networks_responses():
    objective = Objective(
        {"content": FeatureReconstruction({"relu2_1": 1.0}), "style": GramLoss({"relu1_1": 1.0})},
        {"content": 1.0, "style": 1.0},
        {"content": "content", "style": "style"},
    )
    model, net = network(objective.layers)
    read = levels.read_pictures(inputs(), Colour(), PICTURES)
    images = levels.prepare(Level(20, 0, 1), read, net, objective, model, inputs(), torch.device("cpu"))
    assert images.content.shape == (1, 3, 15, 20) and images.styles[0].shape == (1, 3, 15, 20)  # the content's size
    with torch.no_grad():
        expected = net(images.content)["relu2_1"]
        style = net(images.styles[0])["relu1_1"]
    # the content term's value at the content is 0, and at zero responses 1/2 sum P^2 (its target's energy)
    at_content = objective.terms["content"]({**net(images.content)})["relu2_1"]
    assert float(at_content) == 0.0
    zeros = objective.at_zero(net(images.content), images.content)
    assert zeros["content"]["relu2_1"] == pytest.approx(0.5 * float(expected.double().pow(2).sum()), rel=1e-5)
    n, m = style.shape[1], style.shape[2] * style.shape[3]
    energy = float(gram(style).double().pow(2).sum()) / (4 * n**2 * m**2)
    assert zeros["style"]["relu1_1"] == pytest.approx(energy, rel=1e-4)


@pytest.mark.parametrize(
    "scale,message",
    [
        (1.0, "the content image becomes 8x6 at 8 px; the layers chosen need both sides >= 16 pixels"),
        (0.25, "at style_scale=0.25 the style becomes 10x8; the layers chosen need both sides >= 16 pixels"),
    ],
)
def test_a_level_too_small_for_its_layers_is_one_sentence(scale, message):
    objective = Objective({"style": GramLoss({"relu5_1": 1.0})}, {"style": 1.0}, {"style": "style"})
    model, net = network(objective.layers)
    read = levels.read_pictures(inputs(scale), Colour(), PICTURES)
    size = 8 if scale == 1.0 else 40
    with pytest.raises(StyleLabError) as err:
        levels.prepare(Level(size, 0, 1), read, net, objective, model, inputs(scale), torch.device("cpu"))
    assert str(err.value) == message

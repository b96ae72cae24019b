"""stylelab.build: a composed config -> the run's parts (levels, weights' addresses, what HParams shows)."""

import pytest
from conftest import compose_cfg

from stylelab import build
from stylelab.build import Level
from stylelab.errors import StyleLabError
from stylelab.overrides import compose_with_choices


def parts(*overrides):
    cfg, choices = compose_with_choices(*overrides)
    return build.build(cfg, choices)


def test_coarse_to_fine_levels_count_their_steps_on():
    assert build.schedule(compose_cfg("schedule.sizes=[128,512]", "schedule.steps=[100,200]")) == [
        Level(128, 0, 100),
        Level(512, 100, 300),
    ]
    assert build.schedule(compose_cfg("image.size=64", "steps=7")) == [Level(64, 0, 7)]


def test_term_weights_know_the_short_keys_they_came_from_and_hparams_show_the_balance_there():
    p = parts("model.weights=random", "loss.style_layers=[relu1_1,relu2_1]")
    assert p.weight_keys["style"] == "loss.beta" and p.weight_keys["content"] == "loss.alpha"
    assert p.objective.weights["style"] is None  # left to the weights' balance
    shown = p.settings_with({"style": 123.0, "style/relu1_1": 0.25, "style/relu2_1": 0.75})
    assert shown["loss.beta"] == 123.0 and shown["loss.style_weights"] == [0.25, 0.75]
    assert shown["loss.alpha"] == 1.0 and p.settings_with({}) == p.settings


def test_layer_weights_by_hand():
    assert build.layer_weights(["a", "b"], None, "style", "loss.style_layers", "loss.style_weights") == {
        "a": 0.5,
        "b": 0.5,
    }
    assert build.layer_weights(["a", "b"], [3, 1], "style", "loss.style_layers", "loss.style_weights") == {
        "a": 3.0,
        "b": 1.0,
    }
    with pytest.raises(StyleLabError, match="loss.style_weights"):
        build.layer_weights(["a", "b"], [1], "style", "loss.style_layers", "loss.style_weights")

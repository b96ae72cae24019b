"""Every config group composes, typed schemas reject typos and bad values at compose time."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

import stylelab.cli as cli
from stylelab.errors import StyleLabError
from stylelab.config import InitKind, OptimizerName, Pooling, StyleLabConfig
from conftest import REPO

CONFIG_DIR = str(REPO / "configs")


def make(*overrides: str) -> StyleLabConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="config", overrides=list(overrides)))


def test_defaults_are_the_paper_layers():
    cfg = make()
    assert cfg.content == "tubingen" and cfg.style == "starry_night"
    assert cfg.loss.content_layers == ["relu4_2"]
    assert cfg.loss.style_layers == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert cfg.model.pooling is Pooling.avg and cfg.init.kind is InitKind.noise
    s = cli.settings_from(cfg)
    assert s.style_layers == {name: 0.2 for name in cfg.loss.style_layers}
    assert s.content_layers == {"relu4_2": 1.0}
    assert s.alpha / s.beta == pytest.approx(1 / 1.032e9)


@pytest.mark.parametrize(
    "override,check",
    [
        ("init=content", lambda c: c.init.kind is InitKind.content),
        ("init=style", lambda c: c.init.kind is InitKind.style),
        ("init=noise", lambda c: c.init.kind is InitKind.noise),
        ("optimizer=adam", lambda c: c.optimizer.name is OptimizerName.adam and c.optimizer.lr == 0.02),
        ("optimizer=lbfgs", lambda c: c.optimizer.name is OptimizerName.lbfgs and c.optimizer.history_size == 100),
        ("loss=paper", lambda c: c.loss.alpha / c.loss.beta == 1e-3),
        ("loss=gatys", lambda c: c.loss.beta == 1.032e9),
        ("model=vgg19", lambda c: c.model.weights == "imagenet"),
    ],
)
def test_every_group_option_composes(override, check):
    assert check(make(override))


def test_init_image_needs_a_path():
    assert make("init=image", "init.path=x.png").init.path == "x.png"
    with pytest.raises(StyleLabError, match="init=image needs init.path"):
        cli.settings_from(make("init=image")).validate()


def test_layer_list_override_replaces_the_default():
    cfg = make("loss.style_layers=[relu1_1,relu2_1]")
    assert cfg.loss.style_layers == ["relu1_1", "relu2_1"]
    assert cli.settings_from(cfg).style_layers == {"relu1_1": 0.5, "relu2_1": 0.5}
    cfg = make("loss.style_layers=[conv1_1,pool2]", "loss.style_weights=[3,1]")
    assert cli.settings_from(cfg).style_layers == {"conv1_1": 3.0, "pool2": 1.0}


@pytest.mark.parametrize(
    "override,error",
    [
        ("loss.alpah=1", "alpah"),
        ("loss.alpha=abc", "abc"),
        ("model.pooling=median", "median"),
        ("image.size=big", "big"),
        ("loss.style_weights=[a,b]", "a"),
        ("device=tpu", "tpu"),
    ],
)
def test_typos_and_bad_types_fail_at_compose(override, error):
    with pytest.raises((ConfigCompositionException, ValidationError, ConfigKeyError)) as err:
        make(override)
    assert error in str(err.value) + str(err.value.__cause__)

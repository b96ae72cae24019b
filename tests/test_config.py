"""The config: every option of every group composes and builds, typed schemas reject typos and bad values
at compose time, and the one list of settings that do not change the picture."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from stylelab import build, config
from stylelab.extractors.vgg import VGGFeatures
from stylelab.losses import FeatureReconstruction, GramLoss, Objective, TotalVariation
from conftest import REPO, SMOKE, compose_cfg

CONFIG_DIR = str(REPO / "configs")
# groups whose options are whole experiments (tested in test_experiments) or Hydra's own
NOT_PARTS = ("hydra", "experiment")


def make(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def group_options() -> list[tuple[str, str]]:
    """(group, option) for every option of every config group but experiments and Hydra's, schemas left out."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()

        def walk(parent):
            for group in loader.list_groups(parent):
                name = f"{parent}/{group}" if parent else group
                if name.split("/")[0] in NOT_PARTS:
                    continue
                for option in loader.get_group_options(name, ObjectType.CONFIG):
                    if not option.endswith(config.SCHEMA_SUFFIX):
                        yield name, option
                yield from walk(name)

        return sorted(walk(""))


def test_the_groups_are_the_swappable_parts():
    groups = {group for group, _ in group_options()}
    assert groups == {"model", "loss", "loss/content", "loss/style", "loss/tv", "init", "optimizer", "colour"}
    assert ("loss/style", "sliced_w2") in group_options() and ("optimizer", "adam") in group_options()


@pytest.mark.parametrize("group,option", group_options())
def test_every_option_of_every_group_builds(group, option, tmp_path):
    """As lightning-hydra-template's test: compose with the option and instantiate every part from it."""
    from conftest import make_image

    content, style = make_image(tmp_path / "c.png", seed=1), make_image(tmp_path / "s.png", seed=2)
    extra = [f"init.path={content}"] if (group, option) == ("init", "image") else []
    cfg = compose_cfg(f"{group}={option}", f"content={content}", f"style={style}", *SMOKE, *extra)
    built = build.build(cfg, progress=False)
    assert isinstance(built.extractor, VGGFeatures) and isinstance(built.objective, Objective)
    assert built.first.init.shape == built.first.content.shape == (1, 3, 40, 48)
    assert callable(built.optimizer) and built.optimizer([built.first.init.clone().requires_grad_(True)])
    losses = built.objective(built.features(built.first.init), built.first.init)
    assert set(losses.values) == {"content", "style", "tv"} and losses.total.isfinite()


def test_defaults_are_the_paper_layers():
    cfg = compose_cfg()
    assert cfg.content == "tubingen" and cfg.style == "starry_night"
    assert list(cfg.loss.content_layers) == ["relu4_2"]
    assert list(cfg.loss.style_layers) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert cfg.model.pooling == "avg" and cfg.init._target_ == "stylelab.inits.noise"
    goal = build.objective(cfg)
    assert isinstance(goal.terms["content"], FeatureReconstruction) and isinstance(goal.terms["style"], GramLoss)
    assert isinstance(goal.terms["tv"], TotalVariation)
    assert goal.terms["style"].layers == {name: 0.2 for name in cfg.loss.style_layers}
    assert goal.terms["content"].layers == {"relu4_2": 1.0}
    assert goal.weights == {"content": 1.0, "style": 1.032e9, "tv": 0.0}


@pytest.mark.parametrize(
    "override,check",
    [
        ("optimizer=adam", lambda c: c.optimizer._target_.endswith("Adam") and c.optimizer.lr == 0.02),
        ("optimizer=lbfgs", lambda c: c.optimizer.history_size == 100 and c.optimizer.lr == 1.0),
        ("loss=paper", lambda c: c.loss.alpha / c.loss.beta == 1e-3 and c.loss.style._target_.endswith("GramLoss")),
        ("loss=gatys", lambda c: c.loss.beta == 1.032e9),
        ("loss/style=sliced_w2", lambda c: c.loss.style.projections is None and c.loss.style.seed == 0),
        ("loss/style=w2", lambda c: c.loss.style.eps == 0.0),
    ],
)
def test_options_carry_their_values(override, check):
    assert check(compose_cfg(override))


def test_sliced_w2_takes_the_run_seed():
    assert compose_cfg("loss/style=sliced_w2", "seed=7").loss.style.seed == 7


def test_layer_list_override_replaces_the_default():
    cfg = compose_cfg("loss.style_layers=[relu1_1,relu2_1]")
    assert build.objective(cfg).terms["style"].layers == {"relu1_1": 0.5, "relu2_1": 0.5}
    cfg = compose_cfg("loss.style_layers=[conv1_1,pool2]", "loss.style_weights=[3,1]")
    assert build.objective(cfg).terms["style"].layers == {"conv1_1": 3.0, "pool2": 1.0}


@pytest.mark.parametrize(
    "overrides,error",
    [
        (["loss.alpah=1"], "alpah"),
        (["loss.alpha=abc"], "abc"),
        (["model.pooling=median"], "median"),
        (["image.size=big"], "big"),
        (["loss.style_weights=[a,b]"], "a"),
        (["device=tpu"], "tpu"),
        (["loss/style=sliced_w2", "loss.style.projections=many"], "many"),
        (["loss/style=sliced_w2", "loss.style.projecitons=3"], "projecitons"),
        (["optimizer.history_size=1.5"], "1.5"),
        (["optimizer.line_search=wolfe"], "wolfe"),
        (["loss/style=gram", "loss.style.eps=1"], "eps"),  # gram takes no options
    ],
)
def test_typos_and_bad_types_fail_at_compose(overrides, error):
    with pytest.raises((ConfigCompositionException, ValidationError, ConfigKeyError)) as err:
        make(*overrides)
    assert error in str(err.value) + str(err.value.__cause__)


def test_inert_settings_are_one_list_that_every_reader_shares():
    cfg = compose_cfg("device=cpu", "log.every=3", "compile=true", "loss.beta=5")
    settings = config.settings(cfg)
    assert settings["loss.beta"] == 5.0 and settings["steps"] == 500 and settings["loss.style._target_"]
    assert not [key for key in settings if config.is_inert(key)]
    for key in ("device", "log.every", "log.progress", "compile", "channels_last", "tf32", "save_every",
                "checkpoint_every", "resume", "figure.rows", "hydra.launcher.n_jobs"):
        assert config.is_inert(key), key
    for key in ("steps", "seed", "loss.beta", "image.size", "optimizer.lr", "loss/style", "model.weights"):
        assert not config.is_inert(key), key
    from stylelab.cli.sweep import fallback_dirname

    assert fallback_dirname(["device=cpu", "log.every=3", "loss.beta=5", "loss/style=w2"], 0) == "loss.beta=5,loss-style=w2"


def test_flatten_gives_plain_values():
    flat = config.flatten(compose_cfg("model.pooling=max"))
    assert flat["model.pooling"] == "max" and type(flat["model.pooling"]) is str
    assert flat["loss.style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert OmegaConf.create(flat)  # plain data throughout

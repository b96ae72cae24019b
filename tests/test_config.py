"""The config: every option of every group composes and builds, the schemas (made from the classes'
signatures) reject typos and bad values at compose time, the objective is the list of terms, and the one
list of settings that do not change the picture."""

import json

import pytest
from conftest import REPO, SMOKE, FirstLevel, compose_cfg
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from stylelab import build, config, signatures
from stylelab.losses import FeatureReconstruction, GramLoss, Laplacian, Objective, TotalVariation
from stylelab.models.vgg import VGG, VGGFeatures
from stylelab.optim import LBFGS

CONFIG_DIR = str(REPO / "configs")
NOT_PARTS = signatures.NOT_PARTS  # groups whose options are whole experiments (test_experiments) or Hydra's own


def objective(cfg):
    return build.objective(cfg, VGG(str(cfg.model.arch)))


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
                    if not option.endswith(signatures.SCHEMA_SUFFIX):
                        yield name, option
                yield from walk(name)

        return sorted(walk(""))


def test_the_groups_are_the_swappable_parts():
    groups = {group for group, _ in group_options()}
    assert groups == {
        "model",
        "loss",
        "loss/content",
        "loss/style",
        "loss/tv",
        "loss/laplacian",
        "init",
        "optimizer",
        "colour",
        "loss/temporal",
        "video",
        "video/flow",
    }
    assert ("loss/style", "sliced_w2") in group_options() and ("optimizer", "adam") in group_options()
    assert ("model", "vgg16") in group_options() and ("model", "vgg19") in group_options()


@pytest.mark.parametrize("group,option", group_options())
def test_every_option_of_every_group_builds(group, option, tmp_path):
    """As lightning-hydra-template's test: compose with the option and instantiate every part from it."""
    from conftest import make_image

    content, style = make_image(tmp_path / "c.png", seed=1), make_image(tmp_path / "s.png", seed=2)
    extra = [f"init.path={content}"] if (group, option) == ("init", "image") else []
    level = FirstLevel(f"{group}={option}", f"content={content}", f"style={style}", *SMOKE, *extra)
    assert isinstance(level.network, VGGFeatures) and isinstance(level.parts.objective, Objective)
    assert level.init.shape == level.images.content.shape == (1, 3, 40, 48)
    assert callable(level.parts.optimizer) and level.parts.optimizer([level.init.clone().requires_grad_(True)])
    losses = level.losses()
    assert set(losses.values) == {"content", "style", "tv", "laplacian"} and losses.total.isfinite()
    if group == "model":
        assert level.network.arch.name == option


def test_defaults_are_the_paper_layers():
    cfg = compose_cfg()
    assert cfg.content == "tubingen" and cfg.style == "starry_night"
    assert list(cfg.loss.content_layers) == ["relu4_2"]
    assert list(cfg.loss.style_layers) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert cfg.model.pooling == "avg" and cfg.model.arch == "vgg19" and cfg.init._target_ == "stylelab.inits.noise"
    goal = objective(cfg)
    assert isinstance(goal.terms["content"], FeatureReconstruction) and isinstance(goal.terms["style"], GramLoss)
    assert isinstance(goal.terms["tv"], TotalVariation) and isinstance(goal.terms["laplacian"], Laplacian)
    assert goal.terms["style"].layers == {name: 0.2 for name in cfg.loss.style_layers}
    assert goal.terms["content"].layers == {"relu4_2": 1.0}
    assert goal.terms["laplacian"].pools == {"p4": 4}
    # beta null: the run sets it from the network's weights (1.032e9 for torchvision's; tests/test_balance.py)
    assert goal.weights == {"content": 1.0, "style": None, "tv": 0.0, "laplacian": 0.0} and cfg.loss.beta is None
    assert goal.targets == {"content": "content", "style": "style", "tv": "none", "laplacian": "content"}


def test_the_objective_is_the_list_of_terms_and_the_knobs_feed_it():
    """loss.alpha, loss.beta, the layer lists (the paper's knobs) are what the entries of loss.terms refer to;
    an entry set directly wins, and the build is one loop over the entries."""
    cfg = compose_cfg(
        "loss.beta=7",
        "loss.style_layers=[relu1_1,relu3_1]",
        "loss.style_weights=[3,1]",
        "loss.laplacian_weight=2",
        "loss.terms.laplacian.layers=[p4,p16]",
    )
    goal = objective(cfg)
    assert goal.weights == {"content": 1.0, "style": 7.0, "tv": 0.0, "laplacian": 2.0}
    assert goal.terms["style"].layers == {"relu1_1": 3.0, "relu3_1": 1.0}
    assert goal.terms["laplacian"].layers == {"p4": 0.5, "p16": 0.5} and goal.layers == [
        "relu4_2",
        "relu1_1",
        "relu3_1",
    ]
    cfg = compose_cfg("loss.terms.style.weight=5", "loss.terms.content.target=none")
    goal = objective(cfg)
    assert goal.weights["style"] == 5.0 and cfg.loss.beta is None and goal.targets["content"] == "none"
    # a reference is the setting it refers to: fingerprints and HParams name loss.beta once, not the entry again
    settings = config.settings(compose_cfg())
    assert "loss.beta" in settings and not [
        k for k in settings if k.startswith(("loss.terms.style.weight", "loss.terms.style.term"))
    ]


def test_an_options_schema_is_its_classes_signature():
    """Each parameter is written once, in the code: the schema takes its default and type from the signature."""
    cfg = compose_cfg()
    assert dict(cfg.optimizer) == {
        "_target_": "stylelab.optim.LBFGS",
        "lr": 1.0,
        "history_size": 100,
        "tolerance_grad": 0.0,
        "tolerance_change": 0.0,
    }
    schema = signatures.schema_of("stylelab.optim.LBFGS")
    defaults = {f.name: f.default for f in __import__("dataclasses").fields(schema)}
    import inspect

    for name, parameter in inspect.signature(LBFGS).parameters.items():
        assert defaults[name] == parameter.default, name
    assert set(signatures.choice(__import__("stylelab.models.vgg", fromlist=["Pooling"]).Pooling).__members__) == {
        "avg",
        "max",
    }


def test_the_packaged_signatures_are_the_signatures_of_the_code():
    # composing reads the package's options' parameters from configs/signatures.json, not by importing their
    # classes (torch); the file is made from the signatures and must say what they say
    packaged = json.loads((REPO / "stylelab" / "configs" / signatures.SIGNATURES).read_text(encoding="utf-8"))
    assert packaged == signatures.signatures_in_code(), "run `python scripts/schemas.py` to write it again"
    assert packaged["stylelab.optim.LBFGS"][:2] == [["lr", "float", 1.0], ["history_size", "int", 100]]
    assert ["method", {"choice": ["pca", "chol", "sym"]}, "pca"] in packaged["stylelab.controls.colour.Match"]


def test_a_users_class_outside_the_package_gets_its_schema_from_its_signature(tmp_path, monkeypatch):
    (tmp_path / "myopts.py").write_text(
        "from typing import Literal\n"
        "def opt(params, lr: float = 0.5, kind: Literal['a', 'b'] = 'b', sizes: list[int] = (1, 2)):\n"
        "    return params\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    schema = signatures.schema_of("myopts.opt")
    node = OmegaConf.structured(schema)
    assert node.lr == 0.5 and str(node.kind) == "b" and list(node.sizes) == [1, 2] and "params" not in node
    with pytest.raises(Exception, match="kind"):
        node.kind = "c"


@pytest.mark.parametrize(
    "override,check",
    [
        ("optimizer=adam", lambda c: c.optimizer._target_.endswith("Adam") and c.optimizer.lr == 0.02),
        ("optimizer=lbfgs", lambda c: c.optimizer.history_size == 100 and c.optimizer.lr == 1.0),
        (
            "optimizer=lbfgs_torch",
            lambda c: c.optimizer._target_ == "stylelab.optim.TorchLBFGS" and c.optimizer.line_search is None,
        ),
        ("loss=paper", lambda c: c.loss.alpha / c.loss.beta == 1e-3 and c.loss.style._target_.endswith("GramLoss")),
        ("loss=gatys", lambda c: c.loss.beta is None and c.loss.alpha == 1.0),
        ("loss/style=sliced_w2", lambda c: c.loss.style.projections is None and c.loss.style.seed == 0),
        ("loss/style=w2", lambda c: c.loss.style.eps == 0.0),
        ("model=vgg16", lambda c: c.model.arch == "vgg16" and c.model.weights == "imagenet"),
        ("colour=match", lambda c: c.colour.method == "pca" and c.colour.eps == 1e-5),
    ],
)
def test_options_carry_their_values(override, check):
    assert check(compose_cfg(override))


def test_sliced_w2_takes_the_run_seed():
    assert compose_cfg("loss/style=sliced_w2", "seed=7").loss.style.seed == 7


def test_layer_list_override_replaces_the_default():
    cfg = compose_cfg("loss.style_layers=[relu1_1,relu2_1]")
    assert objective(cfg).terms["style"].layers == {"relu1_1": 0.5, "relu2_1": 0.5}
    cfg = compose_cfg("loss.style_layers=[conv1_1,pool2]", "loss.style_weights=[3,1]")
    assert objective(cfg).terms["style"].layers == {"conv1_1": 3.0, "pool2": 1.0}


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
        (["optimizer=lbfgs_torch", "optimizer.line_search=wolfe"], "wolfe"),
        (["loss/style=gram", "loss.style.eps=1"], "eps"),  # gram takes no options
        (["colour=match", "colour.method=lab"], "lab"),
        (["loss.terms.style.target=painting"], "painting"),
        (["loss.terms.style.wieght=1"], "wieght"),
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
    for key in (
        "device",
        "log.every",
        "log.progress",
        "compile",
        "channels_last",
        "tf32",
        "save_every",
        "checkpoint_every",
        "resume",
        "figure.rows",
        "hydra.launcher.n_jobs",
    ):
        assert config.is_inert(key), key
    for key in ("steps", "seed", "loss.beta", "image.size", "optimizer.lr", "loss/style", "model.weights"):
        assert not config.is_inert(key), key
    from stylelab.cli.sweep import fallback_dirname  # a test may look into the command line's code

    assert (
        fallback_dirname(["device=cpu", "log.every=3", "loss.beta=5", "loss/style=w2"], 0)
        == "loss.beta=5,loss-style=w2"
    )


def test_flatten_gives_plain_values():
    flat = config.flatten(compose_cfg("model.pooling=max"))
    assert flat["model.pooling"] == "max" and type(flat["model.pooling"]) is str
    assert flat["loss.style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert OmegaConf.create(flat)  # plain data throughout

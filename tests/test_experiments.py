"""experiments/gatys2016: every experiment composes to the paper's setting and runs end to end (tiny, random
weights)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, make_image, run_cli
from hydra import compose, initialize_config_module
from PIL import Image

from stylelab import api, build, config
from stylelab.cli import figure as figure_cli
from stylelab.models.vgg import VGG

EXPERIMENTS_DIR = REPO / "experiments"
EXPERIMENTS = ["fig1_content", "fig1_style", "fig3", "fig4", "fig5", "fig6", "fig7"]
GROWING = [
    "[relu1_1]",
    "[relu1_1,relu2_1]",
    "[relu1_1,relu2_1,relu3_1]",
    "[relu1_1,relu2_1,relu3_1,relu4_1]",
    "[relu1_1,relu2_1,relu3_1,relu4_1,relu5_1]",
]
GROWING_LABELS = [
    "relu1_1",
    "relu1_1, relu2_1",
    "relu1_1, relu2_1, relu3_1",
    "relu1_1, relu2_1, relu3_1, relu4_1",
    "relu1_1, relu2_1, relu3_1, relu4_1, relu5_1",
]  # written out: a range would hide relu1_2
FIG3_PANELS = {  # panel: (style, the paper's alpha/beta)
    "shipwreck": ("shipwreck", 1e-3),
    "starry_night": ("starry_night", 8e-4),
    "the_scream": ("the_scream", 5e-3),
    "picasso": ("/my/femme_nue_assise.jpg", 5e-4),
    "composition_vii": ("composition_vii", 5e-4),
}
FIG6_STARTS = {
    "content": ("content", 0),
    "style": ("style", 0),
    "noise_seed0": ("noise", 0),
    "noise_seed1": ("noise", 1),
    "noise_seed2": ("noise", 2),
    "noise_seed3": ("noise", 3),
}
INIT = {"noise": "stylelab.inits.noise", "content": "stylelab.inits.from_content", "style": "stylelab.inits.from_style"}


INPUTS = {"fig3": ["inputs.picasso=x"], "fig7": ["inputs.content_photo=a", "inputs.style_photo=b"]}


def compose_experiment(name: str, *overrides: str, hydra: bool = False):
    """Composed through the installed package, as the `stylelab` command finds it from any directory."""
    with initialize_config_module(config_module="stylelab.configs", version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment=gatys2016/{name}", *overrides], return_hydra_config=hydra)
    return cfg


def sweep_params(name: str) -> dict[str, list[str]]:
    params = compose_experiment(name, *INPUTS.get(name, []), hydra=True).hydra.sweeper.params or {}
    return {key: value.split(",") if "[" not in value else _split_lists(value) for key, value in params.items()}


def _split_lists(value: str) -> list[str]:
    return [f"[{item}" for item in value.strip()[1:].split(",[")]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_declares_its_figure(name):
    cfg = compose_experiment(name, *INPUTS.get(name, []))
    assert cfg.figure.title.startswith("Gatys et al. 2016, Fig")
    # what the experiments leave to the defaults is the paper's: avg pooling, L-BFGS, 500 steps, relu4_2
    assert cfg.model.pooling == "avg" and cfg.optimizer._target_ == "stylelab.optim.LBFGS" and cfg.steps == 500
    assert cfg.loss.style._target_ == "stylelab.losses.style.GramLoss"
    assert name in ("fig1_style", "fig5") or cfg.loss.content_layers == ["relu4_2"]


def test_fig1_content_and_style_reconstructions():
    assert sweep_params("fig1_content") == {"loss.content_layers": [f"[relu{b}_2]" for b in range(1, 6)]}
    cfg = compose_experiment("fig1_content")
    assert cfg.loss.style_layers == [] and cfg.init._target_ == INIT["noise"] and cfg.content == "tubingen"
    assert build.objective(cfg, VGG("vgg19")).terms["style"].layers == {} and cfg.loss.beta == 0
    assert sweep_params("fig1_style") == {"loss.style_layers": GROWING}
    cfg = compose_experiment("fig1_style")
    assert cfg.loss.content_layers == [] and cfg.init._target_ == INIT["noise"] and cfg.style == "starry_night"
    assert cfg.loss.alpha == 0


def test_fig3_pairs_each_painting_with_its_ratio():
    assert sweep_params("fig3") == {"experiment/gatys2016/fig3_panel": list(FIG3_PANELS)}
    for panel, (style, ratio) in FIG3_PANELS.items():
        cfg = compose_experiment(
            "fig3", f"experiment/gatys2016/fig3_panel={panel}", "inputs.picasso=/my/femme_nue_assise.jpg"
        )
        assert cfg.style == style and cfg.content == "tubingen"
        assert cfg.loss.alpha / cfg.loss.beta == pytest.approx(ratio)
        assert cfg.figure.inset == "bottom_left"


def test_fig4_matrix_of_layer_sets_and_ratios():
    params = sweep_params("fig4")
    assert params["loss.style_layers"] == GROWING
    cfg = compose_experiment("fig4")
    ratios = [cfg.loss.alpha / float(beta) for beta in params["loss.beta"]]
    assert ratios == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2])
    assert cfg.style == "composition_vii" and cfg.content == "tubingen"
    assert (cfg.figure.rows, cfg.figure.cols) == ("loss.style_layers", "loss.beta")


def test_fig5_content_layers_at_1e_3():
    assert sweep_params("fig5") == {"loss.content_layers": ["[relu2_2]", "[relu4_2]"]}
    cfg = compose_experiment("fig5")
    assert cfg.loss.alpha / cfg.loss.beta == pytest.approx(1e-3)


def test_fig6_starts_from_content_style_and_four_noise_seeds():
    assert sweep_params("fig6") == {"experiment/gatys2016/fig6_init": list(FIG6_STARTS)}
    for start, (kind, seed) in FIG6_STARTS.items():
        cfg = compose_experiment("fig6", f"experiment/gatys2016/fig6_init={start}")
        assert (cfg.init._target_, cfg.seed) == (INIT[kind], seed)
        assert cfg.loss.alpha / cfg.loss.beta == pytest.approx(1e-3)


def test_fig7_photorealistic_needs_two_photos():
    assert sweep_params("fig7") == {}
    cfg = compose_experiment("fig7", "inputs.content_photo=day.jpg", "inputs.style_photo=night.jpg")
    assert (cfg.content, cfg.style) == ("day.jpg", "night.jpg")
    assert cfg.init._target_ == INIT["content"] and cfg.loss.alpha / cfg.loss.beta == pytest.approx(1e-2)
    with initialize_config_module(config_module="stylelab.configs", version_base="1.3"):
        raw = compose("config", overrides=["+experiment=gatys2016/fig7"])
    assert config.missing_keys(raw) == ["inputs.content_photo", "inputs.style_photo"]


@pytest.mark.slow
def test_experiments_are_found_from_any_directory(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "stylelab.cli", "+experiment=gatys2016/fig4", "--cfg", "job"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "style: composition_vii" in proc.stdout and "rows: loss.style_layers" in proc.stdout


@pytest.mark.slow
def test_missing_user_image_is_one_sentence(tmp_path):
    proc = run_cli("-m", "+experiment=gatys2016/fig3", "model.weights=random", f"hydra.sweep.dir={tmp_path / 'sw'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "stylelab: error: this config needs a value for inputs.picasso: give it on the command line" in proc.stderr
    assert not (tmp_path / "sw").exists()  # refused before the sweep began


# (experiment, extra overrides, expected rows, expected columns)
RUNS = [
    ("fig1_content", [], [], [f"relu{b}_2" for b in range(1, 6)]),
    ("fig1_style", [], [], GROWING_LABELS),
    ("fig3", ["inputs.picasso={style}"], [], list(FIG3_PANELS)),
    # the key swept is loss.beta; the paper's alpha/beta, the figure's point, is the second line
    (
        "fig4",
        [],
        GROWING_LABELS,
        [
            f"{beta} alpha/beta {ratio}"
            for beta, ratio in (("1e5", "1e-5"), ("1e4", "1e-4"), ("1e3", "1e-3"), ("1e2", "1e-2"))
        ],
    ),
    ("fig5", [], [], ["relu2_2", "relu4_2"]),
    ("fig6", [], [], list(FIG6_STARTS)),
    ("fig7", ["inputs.content_photo={content}", "inputs.style_photo={style}"], [], []),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,extra,rows,cols", RUNS, ids=[r[0] for r in RUNS])
def test_experiment_runs_and_figure_has_its_grid(tmp_path, capsys, name, extra, rows, cols):
    content, style = make_image(tmp_path / "c.png", (40, 32), seed=1), make_image(tmp_path / "s.png", (32, 40), seed=2)
    images = [] if name == "fig7" else [f"content={content}", f"style={style}"]  # the samples would need network
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        f"+experiment=gatys2016/{name}",
        "model.weights=random",
        "image.size=32",
        "steps=2",
        "log.progress=false",
        *images,
        *(e.format(content=content, style=style) for e in extra),
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    jobs = [p for p in sweep.iterdir() if (p / "final.png").is_file()]
    assert len(jobs) == max(len(rows), 1) * max(len(cols), 1)

    figure_cli.main([str(sweep)])
    assert f"({max(len(rows), 1)} x {max(len(cols), 1)} grid" in capsys.readouterr().out
    with Image.open(sweep / "figure.png") as im:
        text = dict(im.text)
    assert json.loads(text["stylelab:rows"])["labels"] == rows
    assert json.loads(text["stylelab:cols"])["labels"] == cols
    assert text["Title"].startswith("Gatys et al. 2016, Fig")


# ---------------------------------------------------------------- Gatys et al. 2017


def compose_2017(name: str, *overrides: str):
    with initialize_config_module(config_module="stylelab.configs", version_base="1.3"):
        return compose("config", overrides=[f"+experiment=gatys2017/{name}", *overrides], return_hydra_config=True)


def test_2017_experiments_compose_to_the_papers_settings():
    cfg = compose_2017("colour")
    assert cfg.hydra.sweeper.params["colour"] == "none,luminance,match,original" and cfg.figure.cols == "colour"
    masks = ["inputs.sky_mask=s.png", "inputs.ground_mask=g.png"]
    for panel, propagation in (("simple", "simple"), ("inside", "inside"), ("all", "all")):
        cfg = compose_2017("spatial", *masks, f"experiment/gatys2017/spatial_panel={panel}")
        assert list(cfg.mask.content) == ["s.png", "g.png"] and cfg.mask.propagation == propagation
        assert list(cfg.style) == ["starry_night", "the_scream"] and cfg.style_blend is None
    cfg = compose_2017("spatial", *masks, "experiment/gatys2017/spatial_panel=blend")
    assert cfg.mask.content is None and list(cfg.style_blend) == [0.5, 0.5]
    cfg = compose_2017("scale")
    assert (cfg.content, cfg.style) == ("the_scream", "starry_night") and list(cfg.loss.content_layers) == []
    assert cfg.init._target_ == INIT["content"]
    cfg = compose_2017("highres", "experiment/gatys2017/highres_panel=two_stage")
    assert list(cfg.schedule.sizes) == [512, 1024] and list(cfg.schedule.steps) == [500, 200]
    cfg = compose_2017("highres", "experiment/gatys2017/highres_panel=single")
    assert (cfg.image.size, cfg.steps, cfg.schedule.sizes) == (1024, 700, None)
    assert compose_2017("style_scale").hydra.sweeper.params["style_scale"] == "0.5,1.0,2.0"


RUNS_2017 = [
    ("colour", ["style={style}"], ["none", "luminance", "match", "original"]),
    (
        "spatial",
        ["style=[{style},{content}]", "inputs.sky_mask={sky}", "inputs.ground_mask={ground}"],
        ["blend", "simple", "inside", "all"],
    ),
    (
        "scale",
        ["inputs.coarse_style={content}", "inputs.fine_style={style}"],
        ["relu1_1", "relu1_1, relu2_1", "relu1_1, relu2_1, relu3_1"],
    ),
    ("scale_transfer", ["inputs.new_style={style}", "style={content},{style}"], ["c.png", "s.png"]),
    ("style_scale", ["style={style}", "image.size=64"], ["0.5", "1.0", "2.0"]),  # as the experiment types them
]


@pytest.mark.slow
@pytest.mark.parametrize("name,extra,cols", RUNS_2017, ids=[r[0] for r in RUNS_2017])
def test_2017_experiment_runs_and_figure_has_its_grid(tmp_path, capsys, name, extra, cols):
    import numpy as np

    content, style = make_image(tmp_path / "c.png", (40, 32), seed=1), make_image(tmp_path / "s.png", (32, 40), seed=2)
    sky = tmp_path / "sky.png"
    Image.fromarray(np.tile((np.arange(32) < 12)[:, None] * 255, (1, 40)).astype(np.uint8)).save(sky)
    Image.fromarray(255 - np.asarray(Image.open(sky))).save(tmp_path / "ground.png")
    paths = {"content": content, "style": style, "sky": sky, "ground": tmp_path / "ground.png"}
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        f"+experiment=gatys2017/{name}",
        "model.weights=random",
        "image.size=32",
        "steps=2",
        "log.progress=false",
        f"content={content}",
        *(e.format(**paths) for e in extra),
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    assert len([p for p in sweep.iterdir() if (p / "final.png").is_file()]) == len(cols)
    figure_cli.main([str(sweep)])
    assert f"(1 x {len(cols)} grid" in capsys.readouterr().out
    with Image.open(sweep / "figure.png") as im:
        assert json.loads(dict(im.text)["stylelab:cols"])["labels"] == cols


ALL_EXPERIMENTS = sorted(str(p.relative_to(EXPERIMENTS_DIR).with_suffix("")) for p in EXPERIMENTS_DIR.glob("*/*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_EXPERIMENTS)
def test_every_experiment_builds_on_vgg16_and_keeps_its_start(name):
    """Every job of every experiment builds with model=vgg16 (all their layers exist in VGG16), and the
    experiment's start stays its own: model=vgg16's default start (the photo) does not change a paper's."""
    base = [f"+experiment={name}", "model=vgg16", "model.weights=random"]
    cfg, _ = api.compose_with_choices(*base, hydra=True)
    filled = [f"{key}=x.png" for key in config.missing_keys(cfg) if not key.startswith("hydra")]
    params = dict(api.compose_with_choices(*base, *filled, hydra=True)[0].hydra.sweeper.params or {})
    jobs = [
        [f"{key}={value}"]
        for key, values in params.items()
        for value in (_split_lists(values) if values.strip().startswith("[") else values.split(","))
    ] or [[]]
    for job in jobs:
        cfg, choices = api.compose_with_choices(*base, *filled, *job)
        assert build.build(cfg, choices).model.arch.name == "vgg16"
        expected = vgg19_init(name, job)
        assert choices["init"] == expected, (name, job)


def vgg19_init(name: str, job: list[str]) -> str:
    """The start the same job takes with the paper's network."""
    _, choices = api.compose_with_choices(f"+experiment={name}", "model.weights=random", *job)
    return choices["init"]

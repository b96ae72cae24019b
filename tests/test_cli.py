"""The `stylelab` command as a user runs it: artifacts, TensorBoard tags, sweeps, errors, determinism."""

import re
import signal

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import stylelab.cli as cli
from stylelab.errors import StyleLabError
from conftest import OFFLINE_ENV, REPO, run_cli, signal_mid_run

SMOKE = ["model.weights=random", "image.size=48", "log.progress=false"]
PAPER_STYLE = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def events(tb_dir) -> EventAccumulator:
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def hparams_of(tb_dir) -> dict:
    acc = events(tb_dir)
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: (v.string_value or v.number_value) for k, v in info.hparams.items()}


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="config", overrides=list(overrides)))


def test_end_to_end_run_writes_image_and_tensorboard(tmp_path, content_png, style_png):
    run_dir = tmp_path / "run"
    proc = run_cli(
        f"content={content_png}", f"style={style_png}", *SMOKE, "steps=6",
        "log.every=2", "log.image_every=3", "save_every=3", f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"wrote .*final\.png after 6 steps in [\d.]+ s \([\d.]+ s/step, device cpu\)", proc.stdout)
    assert "NOT meaningful art" in proc.stderr and "Traceback" not in proc.stderr
    with Image.open(run_dir / "final.png") as im:
        assert im.size == (48, 40) and im.mode == "RGB"
    assert (run_dir / "step_00003.png").is_file() and (run_dir / "step_00006.png").is_file()

    acc = events(run_dir / "tb")
    scalars = set(acc.Tags()["scalars"])
    expected = {"loss/total", "loss/content", "loss/style", "loss/tv", "loss/weighted/content",
                "loss/weighted/style", "loss/content/relu4_2"} | {f"loss/style/{n}" for n in PAPER_STYLE}
    assert expected <= scalars
    assert [e.step for e in acc.Scalars("loss/total")] == [0, 2, 4, 6]
    # the weighted terms are alpha and beta times the unweighted ones (alpha=1, beta=1.032e9)
    style = acc.Scalars("loss/style")[-1].value
    assert acc.Scalars("loss/weighted/style")[-1].value == pytest.approx(1.032e9 * style, rel=1e-5)
    per_layer = sum(0.2 * acc.Scalars(f"loss/style/{n}")[-1].value for n in PAPER_STYLE)
    assert style == pytest.approx(per_layer, rel=1e-5)
    assert [e.step for e in acc.Images("image/generated")] == [0, 3, 6]
    assert {"image/content", "image/style"} <= set(acc.Tags()["images"])

    hp = hparams_of(run_dir / "tb")
    assert hp["beta"] == pytest.approx(1.032e9) and hp["alpha"] == 1.0
    assert hp["style_layers"] == ",".join(f"{n}:0.2" for n in PAPER_STYLE)
    assert hp["init"] == "noise" and hp["optimizer"] == "lbfgs" and hp["pooling"] == "avg"
    assert hp["size"] == 48 and hp["steps"] == 6
    assert "summary/total" in scalars and "summary/seconds_per_step" in scalars
    assert acc.Scalars("summary/total")[0].step == 6


@pytest.mark.slow
def test_multirun_names_job_folders_after_overrides(tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", f"content={content_png}", f"style={style_png}", *SMOKE, "steps=2",
        "loss.beta=1e2,1e3", f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2
    for job, beta in zip(jobs, ("100.0", "1000.0")):
        # every override but the inert ones, sorted; image paths shortened to their file names
        assert job == f"content=content.png,image.size=48,loss.beta={beta},model.weights=random,steps=2,style=style.png"
        assert (sweep / job / "final.png").is_file()
        assert hparams_of(sweep / job / "tb")["beta"] == float(beta)


def test_missing_image_is_one_sentence_and_leaves_nothing(tmp_path, style_png):
    run_dir = tmp_path / "run"
    proc = run_cli(f"content={tmp_path}/nope.jpg", f"style={style_png}", *SMOKE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("is neither a file nor a sample name (tubingen, shipwreck, starry_night, the_scream, composition_vii, woman_with_hat).") or "nope.jpg" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()


def test_unknown_key_fails_before_running(tmp_path):
    proc = run_cli("loss.alpah=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0 and "alpah" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_offline_sample_image_and_weights_name_file_and_folder(tmp_path, content_png, style_png):
    env = {**OFFLINE_ENV, "STYLELAB_CACHE": str(tmp_path / "cache"), "TORCH_HOME": str(tmp_path / "th")}
    proc = run_cli("content=tubingen", f"style={style_png}", *SMOKE, f"hydra.run.dir={tmp_path / 'a'}", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "tubingen.jpg" in proc.stderr and str(tmp_path / "cache" / "images") in proc.stderr

    proc = run_cli(f"content={content_png}", f"style={style_png}", "image.size=48", "model.weights=imagenet",
                   f"hydra.run.dir={tmp_path / 'b'}", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "vgg19-dcbb9e9d.pth" in proc.stderr and str(tmp_path / "th" / "hub" / "checkpoints") in proc.stderr
    assert not (tmp_path / "b").exists()


def test_help_lists_groups_options_and_examples():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for text in ("init: content, image, noise, style", "optimizer: adam, lbfgs", "loss.style_layers",
                 "stylelab -m loss.beta=", "model.weights=random"):
        assert text in proc.stdout, text


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["loss.style_layers=[relu1_1,relu9_9]"], "unknown style layer 'relu9_9'; valid layers are conv1_1, relu1_1"),
        (["loss.content_layers=[conv4_2]", "loss.content_weights=[-1]"], "content weight of conv4_2 must be a number >= 0"),
        (["loss.beta=-5"], "loss.beta must be >= 0"),
        (["image.size=0"], "image.size must be between 16"),
        (["image.size=100000"], "image.size must be between 16 (for the layers chosen) and 8192"),
        (["loss.style_weights=[1,2]"], "loss.style_weights has 2 values but loss.style_layers has 5 layers"),
        (["loss.style_layers=[relu1_1,relu1_1]"], "lists a layer twice"),
        (["init=image", "init.path=/nonexistent.png"], "/nonexistent.png"),
        (["steps=-1"], "steps must be >= 0"),
    ],
)
def test_bad_values_are_refused_before_any_file(tmp_path, content_png, style_png, overrides, message):
    cfg = compose_cfg(f"content={content_png}", f"style={style_png}", *SMOKE, *overrides)
    with pytest.raises(StyleLabError, match=re.escape(message)):
        cli.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_non_image_and_bomb_are_refused(tmp_path, content_png, monkeypatch):
    junk = tmp_path / "junk.jpg"
    junk.write_text("this is not a picture")
    cfg = compose_cfg(f"content={content_png}", f"style={junk}", *SMOKE)
    with pytest.raises(StyleLabError, match="cannot read image .*junk.jpg"):
        cli.run(cfg, tmp_path / "run")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 48x40 content has 1920 pixels
    cfg = compose_cfg(f"content={content_png}", f"style={content_png}", *SMOKE)
    with pytest.raises(StyleLabError, match="1920 pixels, more than the limit of 1000"):
        cli.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_same_seed_same_bytes(tmp_path, content_png, style_png):
    cfg = compose_cfg(f"content={content_png}", f"style={style_png}", *SMOKE, "steps=5")
    a = cli.run(cfg, tmp_path / "a").read_bytes()
    b = cli.run(cfg, tmp_path / "b").read_bytes()
    other = cli.run(compose_cfg(f"content={content_png}", f"style={style_png}", *SMOKE, "steps=5", "seed=1"),
                    tmp_path / "c").read_bytes()
    assert a == b and a != other


@pytest.mark.slow
def test_ctrl_c_saves_the_current_image(tmp_path, content_png, style_png):
    run_dir = tmp_path / "run"
    args = [f"content={content_png}", f"style={style_png}", *SMOKE, "steps=100000"]
    proc = signal_mid_run(args, run_dir, signal.SIGINT, settle=1.0)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    assert re.search(r"wrote .*final\.png after \d+ steps .*\(interrupted after \d+ steps\)", out)
    assert "Traceback" not in err
    with Image.open(run_dir / "final.png") as im:
        assert im.size == (48, 40)

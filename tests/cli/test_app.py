"""The `stylelab` command as a user runs it: artifacts, TensorBoard tags, sweeps, errors, determinism."""

import re
import signal

import pytest
from conftest import OFFLINE_ENV, PAPER_STYLE, SMOKE, events, hparams_of, run_cli, run_job, signal_mid_run
from omegaconf import OmegaConf
from PIL import Image

from stylelab.errors import StyleLabError


def test_end_to_end_run_writes_image_and_tensorboard(tmp_path, content_png, style_png):
    run_dir = tmp_path / "run"
    proc = run_cli(
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        "steps=6",
        "log.every=2",
        "log.image_every=3",
        "save_every=3",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"wrote .*final\.png after 6 steps in [\d.]+ s \([\d.]+ s/step, device cpu\)", proc.stdout)
    assert "NOT meaningful art" in proc.stderr and "Traceback" not in proc.stderr
    with Image.open(run_dir / "final.png") as im:
        assert im.size == (48, 40) and im.mode == "RGB"
    assert (run_dir / "step_00003.png").is_file() and (run_dir / "step_00006.png").is_file()

    acc = events(run_dir)
    scalars = set(acc.Tags()["scalars"])
    expected = {
        "loss/total",
        "loss/content",
        "loss/style",
        "loss/tv",
        "loss/weighted/content",
        "loss/weighted/style",
        "loss/weighted/tv",
        "loss/content/relu4_2",
    } | {f"loss/style/{n}" for n in PAPER_STYLE}
    assert expected <= scalars
    assert [e.step for e in acc.Scalars("loss/total")] == [0, 2, 4, 6]
    # the weighted terms are alpha and beta times the unweighted ones (alpha=1, beta=1.032e9)
    style = acc.Scalars("loss/style")[-1].value
    assert acc.Scalars("loss/weighted/style")[-1].value == pytest.approx(1.032e9 * style, rel=1e-5)
    per_layer = sum(0.2 * acc.Scalars(f"loss/style/{n}")[-1].value for n in PAPER_STYLE)
    assert style == pytest.approx(per_layer, rel=1e-5)
    total = acc.Scalars("loss/total")[-1].value
    assert total == pytest.approx(acc.Scalars("loss/content")[-1].value + 1.032e9 * style, rel=1e-5)  # tv_weight 0
    assert acc.Scalars("loss/tv")[-1].value > 0 and acc.Scalars("loss/weighted/tv")[-1].value == 0
    assert [e.step for e in acc.Images("image/generated")] == [0, 3, 6]
    assert {"image/content", "image/style"} <= set(acc.Tags()["images"])
    assert "image/final" not in acc.Tags()["images"]  # colour=none: the picture is the image optimised

    hp = hparams_of(run_dir)
    assert hp["loss.beta"] == pytest.approx(1.032e9) and hp["loss.alpha"] == 1.0
    assert hp["alpha/beta"] == pytest.approx(1 / 1.032e9)
    assert hp["loss.style_layers"] == "[" + ",".join(PAPER_STYLE) + "]"
    assert hp["init"] == "noise" and hp["optimizer"] == "lbfgs" and hp["model.pooling"] == "avg"
    assert hp["loss/style"] == "gram" and hp["loss/content"] == "l2"
    assert hp["image.size"] == 48 and hp["steps"] == 6
    assert not [k for k in hp if k.startswith(("log.", "device", "hydra")) or k.endswith("_target_")]
    assert "summary/total" in scalars and "summary/seconds_per_step" in scalars
    assert acc.Scalars("summary/total")[0].step == 6

    # the Text tab: the command that remakes this run, its overrides, and the config as .hydra/ saved it
    text = {
        tag.split("/")[1]: acc.Tensors(tag)[0].tensor_proto.string_val[0].decode()
        for tag in acc.Tags()["tensors"]
        if tag.startswith("text/")
    }
    assert set(text) == {"command", "overrides", "config"}
    assert text["command"] == (
        f"`stylelab \"content='{content_png}'\" \"style='{style_png}'\" {' '.join(SMOKE)} "
        "steps=6 log.every=2 log.image_every=3 save_every=3`"
    )  # hydra.* is Hydra's, not the run's
    assert "- `steps=6`" in text["overrides"].splitlines()
    config_text = text["config"].removeprefix("```yaml\n").removesuffix("```")
    assert OmegaConf.create(config_text) == OmegaConf.load(run_dir / ".hydra" / "config.yaml")


@pytest.mark.slow
def test_multirun_names_job_folders_after_overrides(tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        "steps=2",
        "loss.beta=1e2,1e3",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["loss.beta=1e2", "loss.beta=1e3"]  # the key the sweep varies, as typed
    for job, beta in zip(jobs, ("1e2", "1e3")):
        assert (sweep / job / "final.png").is_file()
        assert hparams_of(sweep / job)["loss.beta"] == beta  # HParams shows a swept value as typed
        assert "content=" in (sweep / job / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.slow
def test_missing_image_is_one_sentence_and_leaves_nothing(tmp_path, style_png):
    run_dir = tmp_path / "run"
    proc = run_cli(f"content={tmp_path}/nope.jpg", f"style={style_png}", *SMOKE, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        f"stylelab: error: image '{tmp_path}/nope.jpg' is neither a file nor a sample name "
        "(tubingen, shipwreck, starry_night, the_scream, composition_vii, woman_with_hat, astronaut)."
    )
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()


def test_unknown_key_fails_before_running(tmp_path):
    proc = run_cli("loss.alpah=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0 and "alpah" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_offline_sample_image_and_weights_name_file_and_folder(tmp_path, content_png, style_png):
    env = {**OFFLINE_ENV, "STYLELAB_CACHE": str(tmp_path / "cache"), "TORCH_HOME": str(tmp_path / "th")}
    proc = run_cli("content=tubingen", f"style={style_png}", *SMOKE, f"hydra.run.dir={tmp_path / 'a'}", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "tubingen.jpg" in proc.stderr and str(tmp_path / "cache" / "images") in proc.stderr

    proc = run_cli(
        f"content={content_png}",
        f"style={style_png}",
        "image.size=48",
        "model.weights=imagenet",
        f"hydra.run.dir={tmp_path / 'b'}",
        env=env,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "vgg19-dcbb9e9d.pth" in proc.stderr and str(tmp_path / "th" / "hub" / "checkpoints") in proc.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["loss.style_layers=[relu1_1,relu9_9]"], "unknown style layer 'relu9_9'; valid layers are conv1_1, relu1_1"),
        (
            ["loss.content_layers=[conv4_2]", "loss.content_weights=[-1]"],
            "content weight of conv4_2 must be a number >= 0",
        ),
        (["loss.beta=-5"], "loss.beta must be >= 0"),
        (["image.size=0"], "image.size must be between 16"),
        (["image.size=100000"], "image.size must be between 16 (for the layers chosen) and 8192"),
        (["loss.style_weights=[1,2]"], "loss.style_weights has 2 values but loss.style_layers has 5 layers"),
        (["loss.style_layers=[relu1_1,relu1_1]"], "lists a layer twice"),
        (["init=image", "init.path=/nonexistent.png"], "/nonexistent.png"),
        (["init=image"], "init=image needs init.path=<an image file>"),
        (["steps=-1"], "steps must be >= 0"),
        (["optimizer.lr=0"], "optimizer.lr must be > 0, not 0.0"),
        (["optimizer.history_size=0"], "optimizer.history_size must be >= 1, not 0"),
        (["loss/style=sliced_w2", "loss.style.projections=0"], "loss.style.projections must be >= 1"),
        (["loss/style=w2", "loss.style.eps=-1"], "loss.style.eps must be >= 0"),
    ],
)
def test_bad_values_are_refused_before_any_file(tmp_path, content_png, style_png, overrides, message):
    with pytest.raises(StyleLabError, match=re.escape(message)):
        run_job(tmp_path / "run", f"content={content_png}", f"style={style_png}", *SMOKE, *overrides)
    assert not (tmp_path / "run").exists()


def test_non_image_and_bomb_are_refused(tmp_path, content_png, monkeypatch):
    junk = tmp_path / "junk.jpg"
    junk.write_text("this is not a picture")
    with pytest.raises(StyleLabError, match="cannot read image .*junk.jpg"):
        run_job(tmp_path / "run", f"content={content_png}", f"style={junk}", *SMOKE)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 48x40 content has 1920 pixels
    with pytest.raises(StyleLabError, match="1920 pixels, more than the limit of 1000"):
        run_job(tmp_path / "run", f"content={content_png}", f"style={content_png}", *SMOKE)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_same_seed_same_bytes(tmp_path, content_png, style_png):
    common = [f"content={content_png}", f"style={style_png}", *SMOKE, "steps=5"]
    for name, extra in (("a", []), ("b", []), ("c", ["seed=1"])):
        run_job(tmp_path / name, *common, *extra)
    a, b, other = ((tmp_path / name / "final.png").read_bytes() for name in "abc")
    assert a == b and a != other


@pytest.mark.slow
def test_ctrl_c_saves_the_current_image(tmp_path, content_png, style_png):
    run_dir = tmp_path / "run"
    args = [f"content={content_png}", f"style={style_png}", *SMOKE, "steps=100000"]
    proc = signal_mid_run(args, run_dir, signal.SIGINT)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    assert re.search(r"wrote .*final\.png after \d+ steps .*\(interrupted after \d+ steps\)", out)
    assert "Traceback" not in err
    with Image.open(run_dir / "final.png") as im:
        assert im.size == (48, 40)


@pytest.mark.slow  # a few CLI processes: seconds each
def test_a_sweeps_job_logs_the_command_that_makes_it_alone_as_typed(tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        "steps=1",
        "loss.beta=1e2,1e3",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    acc = events(sweep / "loss.beta=1e3")
    command = acc.Tensors("text/command/text_summary")[0].tensor_proto.string_val[0].decode()
    assert command.endswith(" loss.beta=1e3`") and command.startswith("`stylelab ")  # not Hydra's 1000.0

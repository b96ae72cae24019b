"""The Python API: the CLI's config and code path (same bytes), in-memory images, the speed options."""

import pytest
import torch
from conftest import SMOKE, FirstLevel, events, run_cli
from PIL import Image

import stylelab
from stylelab import api, backend
from stylelab.errors import StyleLabError

TINY = ["model.weights=random", "image.size=32", "steps=3", "log.progress=false"]


def test_stylize_returns_a_pil_image_at_the_content_size(content_png, style_png):
    picture = stylelab.stylize(str(content_png), Image.open(style_png), *TINY)
    assert isinstance(picture, Image.Image) and picture.size == (32, 27)


def test_transfer_accepts_tensors_and_reports_every_term():
    result = stylelab.transfer(torch.rand(3, 24, 32), torch.rand(1, 3, 40, 40), *TINY, "loss/style=mean_std")
    assert result.steps_done == 3 and result.image.shape == (1, 3, 24, 32)
    assert set(result.final.values) == {"content", "style", "tv", "laplacian"}
    assert set(result.final.layers["style"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}


def test_curves_hold_every_steps_losses_as_tensorboard_logs_them(tmp_path):
    result = stylelab.transfer(
        torch.rand(3, 24, 32), torch.rand(3, 24, 32), *TINY, "log.every=2", run_dir=tmp_path / "run"
    )
    curves = result.curves
    # steps 0, 1, 2 (each the image before its update), then the last image, step 3, at the run's end
    assert [s for s, _ in curves["loss/total"]] == [0, 1, 2, 3]
    assert curves["loss/total"][-1][1] == pytest.approx(float(result.final.total), rel=1e-6)
    logged = {e.step: e.value for e in events(tmp_path / "run").Scalars("loss/style/relu3_1")}
    assert sorted(logged) == [0, 2, 3]
    for step, value in curves["loss/style/relu3_1"]:
        if step in logged:
            assert value == pytest.approx(logged[step], rel=1e-6)  # TensorBoard stores float32


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["loss/style=w2", "optimizer=adam", "init=content"]], ids=["default", "w2-adam"])
def test_the_api_writes_the_same_bytes_as_the_cli(tmp_path, content_png, style_png, extra):
    args = [f"content={content_png}", f"style={style_png}", *SMOKE, "steps=4", *extra]
    proc = run_cli(*args, f"hydra.run.dir={tmp_path / 'cli'}")
    assert proc.returncode == 0, proc.stderr
    stylelab.run(stylelab.compose(*args), tmp_path / "api")
    assert (tmp_path / "api" / "final.png").read_bytes() == (tmp_path / "cli" / "final.png").read_bytes()
    # the API's folder has the record the command's has: the summary and resume= read it
    saved = (tmp_path / "api" / ".hydra" / "config.yaml").read_text()
    assert saved == (tmp_path / "cli" / ".hydra" / "config.yaml").read_text().replace(str(tmp_path / "cli"), "")
    stylelab.transfer(str(content_png), str(style_png), *args[2:], run_dir=tmp_path / "transfer")
    assert "loss/style: " in (tmp_path / "transfer" / ".hydra" / "hydra.yaml").read_text()  # the options chosen
    picture = stylelab.stylize(str(content_png), str(style_png), *SMOKE, "steps=4", *extra)
    assert picture.tobytes() == Image.open(tmp_path / "cli" / "final.png").convert("RGB").tobytes()


def test_keywords_are_overrides_and_groups_take_their_own_defaults():
    # optimizer="adam" picks the group's option, with its learning rate (not L-BFGS's 1.0)
    cfg = stylelab.compose(optimizer="adam", steps=7, **{"loss/style": "sliced_w2"})
    assert cfg.optimizer.lr == 0.02 and cfg.steps == 7 and cfg.loss.style.projections is None
    cfg = stylelab.compose("loss.style_layers=[relu1_1]", seed=3, content="/my photos/Straße 1.jpg")
    assert list(cfg.loss.style_layers) == ["relu1_1"] and cfg.seed == 3 and cfg.content == "/my photos/Straße 1.jpg"
    assert api.override_value([1e-3, "relu1_1", None, True]) == "[0.001,'relu1_1',null,true]"
    with pytest.raises(StyleLabError, match=r"^no setting loss.alpah; did you mean loss.alpha\?$"):
        stylelab.compose("loss.alpah=1")
    with pytest.raises(StyleLabError, match=r"^no setting size; did you mean image.size\?$"):
        stylelab.stylize("a.jpg", "b.jpg", size=256)


def test_channels_last_gives_the_same_losses():
    pictures = {"content": torch.rand(3, 32, 32), "style": torch.rand(3, 32, 32)}
    losses = []
    for flag in ("true", "false"):
        level = FirstLevel(*TINY, f"channels_last={flag}", pictures=pictures)
        losses.append(level.losses().total)
        assert level.network.net.conv1_1.weight.is_contiguous(memory_format=torch.channels_last) == (flag == "true")
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=0)


def test_cuda_backend_settings_without_a_gpu():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        backend.configure(torch.device("cuda"), tf32=False)
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32  # Grams stay float32
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert backend.resolve_device("auto").type == "cpu"
    with pytest.raises(StyleLabError, match="device=cuda but PyTorch sees no CUDA GPU"):
        backend.resolve_device("cuda")


@pytest.mark.slow
def test_compile_runs_and_matches_eager():
    content, style = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
    eager = stylelab.transfer(content, style, *TINY)
    compiled = stylelab.transfer(content, style, *TINY, "compile=true")
    torch.testing.assert_close(compiled.final.total, eager.final.total, rtol=1e-3, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("style_loss", ["gram", "mean_std", "w2", "sliced_w2"])
def test_cuda_run_matches_cpu(style_loss):
    pictures = {"content": torch.rand(3, 64, 64), "style": torch.rand(3, 64, 64)}
    totals = []
    for device in ("cpu", "cuda"):
        level = FirstLevel(
            *TINY, "image.size=64", f"device={device}", "tf32=false", f"loss/style={style_loss}", pictures=pictures
        )
        totals.append(level.losses().total.item())
    assert totals[1] == pytest.approx(totals[0], rel=1e-3)
    result = stylelab.transfer(
        pictures["content"],
        pictures["style"],
        *TINY,
        "image.size=64",
        "device=cuda",
        f"loss/style={style_loss}",
        "steps=5",
    )
    assert result.steps_done == 5 and result.image.device.type == "cuda"

"""The notebook API (no Hydra) and the speed options, on CPU; the CUDA branch where it can run on CPU."""

import pytest
import torch
from PIL import Image

import stylelab
from stylelab.api import Settings, _configure_backend, prepare, resolve_device
from stylelab.errors import StyleLabError

TINY = dict(size=32, steps=3, weights="random")


def test_stylize_returns_a_pil_image_at_the_content_size(content_png, style_png):
    picture = stylelab.stylize(str(content_png), Image.open(style_png), **TINY)
    assert isinstance(picture, Image.Image) and picture.size == (32, 27)


def test_transfer_accepts_tensors_and_reports(content_png):
    content = torch.rand(3, 24, 32)
    result = stylelab.transfer(content, torch.rand(1, 3, 40, 40), Settings(**TINY), progress=False)
    assert result.steps_done == 3 and result.image.shape == (1, 3, 24, 32)
    assert set(result.final.style_layers) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}


def test_channels_last_gives_the_same_losses():
    content, style = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
    a = prepare(content, style, Settings(**TINY, channels_last=True), progress=False)
    b = prepare(content, style, Settings(**TINY, channels_last=False), progress=False)
    ta, tb = a.loss(a.features(a.init), a.init), b.loss(b.features(b.init), b.init)
    torch.testing.assert_close(ta.total, tb.total, rtol=1e-4, atol=0)
    assert a.extractor.net.conv1_1.weight.is_contiguous(memory_format=torch.channels_last)


def test_cuda_backend_settings_without_a_gpu():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        _configure_backend(torch.device("cuda"), Settings(tf32=False))
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32  # Grams stay float32
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(StyleLabError, match="device=cuda but PyTorch sees no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.slow
def test_compile_runs_and_matches_eager():
    content, style = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
    eager = stylelab.transfer(content, style, Settings(**TINY), progress=False)
    compiled = stylelab.transfer(content, style, Settings(**TINY, compile=True), progress=False)
    torch.testing.assert_close(compiled.final.total, eager.final.total, rtol=1e-3, atol=0)


@pytest.mark.gpu
def test_cuda_run_matches_cpu():
    content, style = torch.rand(3, 64, 64), torch.rand(3, 64, 64)
    cpu = prepare(content, style, Settings(**TINY, device="cpu"), progress=False)
    gpu = prepare(content, style, Settings(**TINY, device="cuda", tf32=False), progress=False)
    t_cpu = cpu.loss(cpu.features(cpu.init), cpu.init).total
    t_gpu = gpu.loss(gpu.features(gpu.init), gpu.init).total
    assert t_gpu.item() == pytest.approx(t_cpu.item(), rel=1e-3)
    result = stylelab.transfer(content, style, Settings(size=64, steps=5, weights="random", device="cuda"))
    assert result.steps_done == 5 and result.image.device.type == "cuda"

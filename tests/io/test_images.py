"""stylelab.io: every image mode, resizing, atomic saving, the samples and their checked download."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from stylelab.errors import StyleLabError
from stylelab.io import samples
from stylelab.io.atomic import write_atomic
from stylelab.io.images import load_image, resize_longest, resize_to, save_image, to_pil
from stylelab.io.samples import SAMPLES, SampleImage, cache_dir, describe, fetch_sample, resolve_image

ONE_STEP = 1 / 255 + 1e-6


def rgb_at(img: torch.Tensor, y: int, x: int) -> list[float]:
    return img[:, y, x].tolist()


def assert_rgb(img: torch.Tensor, y: int, x: int, expected: tuple[float, float, float]) -> None:
    got = torch.tensor(rgb_at(img, y, x))
    assert torch.allclose(got, torch.tensor(expected), atol=ONE_STEP), (got, expected)


def saved(im: Image.Image, path: Path, **kwargs) -> Path:
    im.save(path, **kwargs)
    return path


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- load_image modes


def test_rgb_png_loads_as_float_chw(tmp_path: Path) -> None:
    im = Image.new("RGB", (5, 3), (255, 128, 0))
    img = load_image(saved(im, tmp_path / "rgb.png"))
    assert img.shape == (3, 3, 5)
    assert img.dtype == torch.float32
    assert_rgb(img, 0, 0, (1.0, 128 / 255, 0.0))


def test_load_accepts_str_path(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (2, 2), (0, 0, 255)), tmp_path / "blue.png")
    assert_rgb(load_image(str(path)), 1, 1, (0.0, 0.0, 1.0))


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (3, 1))
    im.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    im.putpixel((1, 0), (255, 0, 0, 128))  # half transparent red
    im.putpixel((2, 0), (0, 255, 0, 255))  # opaque green
    img = load_image(saved(im, tmp_path / "rgba.png"))
    assert img.shape == (3, 1, 3)
    assert_rgb(img, 0, 0, (1.0, 1.0, 1.0))
    assert_rgb(img, 0, 1, (1.0, 0.5, 0.5))
    assert_rgb(img, 0, 2, (0.0, 1.0, 0.0))


def test_la_is_composited_on_white(tmp_path: Path) -> None:
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (0, 255))
    img = load_image(saved(im, tmp_path / "la.png"))
    assert_rgb(img, 0, 0, (1.0, 1.0, 1.0))
    assert_rgb(img, 0, 1, (0.0, 0.0, 0.0))


def test_grayscale_l(tmp_path: Path) -> None:
    im = Image.new("L", (4, 2), 51)
    img = load_image(saved(im, tmp_path / "gray.png"))
    assert img.shape == (3, 2, 4)
    assert_rgb(img, 1, 3, (0.2, 0.2, 0.2))


def test_one_bit(tmp_path: Path) -> None:
    im = Image.new("1", (2, 1), 0)
    im.putpixel((1, 0), 1)
    img = load_image(saved(im, tmp_path / "bits.png"))
    assert_rgb(img, 0, 0, (0.0, 0.0, 0.0))
    assert_rgb(img, 0, 1, (1.0, 1.0, 1.0))


def palette_image() -> Image.Image:
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    for x in range(3):
        im.putpixel((x, 0), x)
    return im


def test_palette(tmp_path: Path) -> None:
    img = load_image(saved(palette_image(), tmp_path / "pal.png"))
    assert img.shape == (3, 1, 3)
    assert_rgb(img, 0, 0, (1.0, 0.0, 0.0))
    assert_rgb(img, 0, 1, (0.0, 1.0, 0.0))
    assert_rgb(img, 0, 2, (0.0, 0.0, 1.0))


def test_palette_transparency_becomes_white(tmp_path: Path) -> None:
    path = saved(palette_image(), tmp_path / "pal_t.png", transparency=1)
    img = load_image(path)
    assert_rgb(img, 0, 0, (1.0, 0.0, 0.0))
    assert_rgb(img, 0, 1, (1.0, 1.0, 1.0))
    assert_rgb(img, 0, 2, (0.0, 0.0, 1.0))


def test_cmyk(tmp_path: Path) -> None:
    im = Image.new("CMYK", (2, 1), (0, 0, 0, 0))
    im.putpixel((1, 0), (255, 0, 0, 0))
    img = load_image(saved(im, tmp_path / "cmyk.tif"))
    assert_rgb(img, 0, 0, (1.0, 1.0, 1.0))
    assert_rgb(img, 0, 1, (0.0, 1.0, 1.0))


def test_16bit_png_keeps_full_precision(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 32769, 65535]], dtype=np.uint16)
    path = saved(Image.fromarray(values), tmp_path / "gray16.png")
    img = load_image(path)
    assert img.shape == (3, 1, 4)
    assert img[0, 0, 1].item() == pytest.approx(32768 / 65535, abs=1e-6)
    assert abs(img[0, 0, 1].item() - 0.5) < 1e-4
    # Neighbouring 16-bit values must stay distinct; 8-bit truncation would merge them.
    assert img[0, 0, 2] > img[0, 0, 1]
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert img[0, 0, 0].item() == 0.0 and img[0, 0, 3].item() == 1.0


def test_32bit_integer_mode_i_scaled_by_65535(tmp_path: Path) -> None:
    im = Image.fromarray(np.array([[32768, 70000]], dtype=np.int32), mode="I")
    img = load_image(saved(im, tmp_path / "gray32.tif"))
    assert img[0, 0, 0].item() == pytest.approx(32768 / 65535, abs=1e-6)
    assert img[0, 0, 1].item() == 1.0  # out of range values are clipped


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 8 wide, 4 high: left half red, right half blue.
    im = Image.new("RGB", (8, 4), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 4, 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img = load_image(saved(im, tmp_path / "rotated.png", exif=exif.tobytes()))
    assert img.shape == (3, 8, 4)
    assert_rgb(img, 0, 0, (1.0, 0.0, 0.0))  # the left side is now on top
    assert_rgb(img, 7, 3, (0.0, 0.0, 1.0))


# ---------------------------------------------------------------- load_image errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StyleLabError, match=r"cannot read image '.*nope\.jpg': no such file"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(StyleLabError, match=r"cannot read image '.*': it is a directory"):
        load_image(tmp_path)


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(StyleLabError, match=r"cannot read image '.*notes\.jpg': not an image"):
        load_image(path)


def test_truncated_file(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = saved(Image.fromarray(noise), tmp_path / "full.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(StyleLabError, match=r"cannot read image '.*cut\.png': "):
        load_image(path)


def test_decompression_bomb_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved(Image.new("RGB", (12, 10)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(ImageFile.ImageFile, "load", _fail_if_decoded)
    with pytest.raises(StyleLabError) as info:
        load_image(path)
    message = str(info.value)
    assert "bomb.png" in message and "120 pixels" in message and "100" in message


def test_far_too_large_image_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Over twice the limit Pillow itself raises DecompressionBombError inside Image.open.
    path = saved(Image.new("RGB", (30, 30)), tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(ImageFile.ImageFile, "load", _fail_if_decoded)
    with pytest.raises(StyleLabError, match=r"image '.*huge\.png' is too large.*900 pixels"):
        load_image(path)


def _fail_if_decoded(self: ImageFile.ImageFile) -> None:
    raise AssertionError("pixels were decoded")


# ---------------------------------------------------------------- resizing


@pytest.mark.parametrize(
    ("hw", "size", "expected"),
    [
        ((30, 60), 20, (10, 20)),
        ((60, 30), 20, (20, 10)),
        ((25, 25), 7, (7, 7)),
        ((10, 15), 30, (20, 30)),  # upscaling works too
        ((1, 1000), 10, (1, 10)),  # the short side never reaches 0
        ((33, 100), 50, (16, 50)),  # 16.5 rounds to even
    ],
)
def test_resize_longest_shapes(hw: tuple[int, int], size: int, expected: tuple[int, int]) -> None:
    out = resize_longest(torch.rand(3, *hw), size)
    assert out.shape == (3, *expected)


def test_resize_stays_in_unit_range() -> None:
    # A hard black/white edge makes bicubic overshoot unless clamped.
    img = torch.zeros(3, 16, 16)
    img[:, :, 8:] = 1.0
    out = resize_to(img, (40, 40))
    assert out.shape == (3, 40, 40)
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0


@pytest.mark.parametrize("shape,hw", [((3, 37, 53), (20, 29)), ((3, 64, 48), (128, 96)), ((1, 3, 33, 33), (17, 40))])
def test_resize_and_to_pil_are_torchvisions_bit_for_bit(shape, hw) -> None:
    # stylelab does torchvision's bicubic antialiased resize without importing torchvision (start-up time)
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    img = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    expected = TF.resize(img, list(hw), interpolation=InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
    assert torch.equal(resize_to(img, hw), expected)
    flat = img.reshape(-1, *img.shape[-3:])[0]
    assert np.array_equal(
        np.asarray(to_pil(flat)), np.asarray(TF.to_pil_image(flat.mul(255).round().to(torch.uint8), mode="RGB"))
    )


def test_resize_keeps_flat_color() -> None:
    img = torch.full((3, 20, 30), 0.25)
    out = resize_longest(img, 12)
    assert torch.allclose(out, torch.full_like(out, 0.25), atol=1e-5)


def test_resize_rejects_zero_size() -> None:
    with pytest.raises(StyleLabError, match="at least 1 pixel"):
        resize_longest(torch.rand(3, 4, 4), 0)


# ---------------------------------------------------------------- to_pil / save_image


def test_to_pil_rounds_and_clamps() -> None:
    img = torch.zeros(1, 3, 1, 3)
    img[0, :, 0, 0] = 0.5  # 127.5 -> 128
    img[0, :, 0, 1] = 2.0
    img[0, :, 0, 2] = -1.0
    pil = to_pil(img)
    assert pil.mode == "RGB" and pil.size == (3, 1)
    assert pil.getpixel((0, 0)) == (128, 128, 128)
    assert pil.getpixel((1, 0)) == (255, 255, 255)
    assert pil.getpixel((2, 0)) == (0, 0, 0)


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    img = torch.rand(3, 9, 13)
    target = tmp_path / "deep" / "er" / "out.png"
    returned = save_image(img, target)
    assert returned == target
    assert only_files(target.parent) == ["out.png"]  # no temp file left over
    with Image.open(target) as im:
        assert im.format == "PNG"
    back = load_image(target)
    assert back.shape == img.shape
    assert (back - img).abs().max().item() <= 0.5 / 255 + 1e-6


def test_save_overwrites_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    save_image(torch.zeros(3, 2, 2), target)
    save_image(torch.ones(3, 2, 2), target)
    assert_rgb(load_image(target), 0, 0, (1.0, 1.0, 1.0))
    assert only_files(tmp_path) == ["out.png"]


def test_write_atomic_writes_bytes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "data.bin"
    write_atomic(target, lambda f: f.write(b"hello"))
    assert target.read_bytes() == b"hello"
    assert only_files(target.parent) == ["data.bin"]


def test_write_atomic_failure_leaves_nothing(tmp_path: Path) -> None:
    def half_then_fail(f) -> None:
        f.write(b"partial")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        write_atomic(tmp_path / "data.bin", half_then_fail)
    assert only_files(tmp_path) == []


def test_write_atomic_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def fail(f) -> None:
        f.write(b"new")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_bytes() == b"old"
    assert only_files(tmp_path) == ["data.bin"]


def test_write_atomic_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StyleLabError, match=r"cannot write '.*file/out\.png'"):
        save_image(torch.zeros(3, 2, 2), blocker / "out.png")
    assert only_files(tmp_path) == ["file"]


# ---------------------------------------------------------------- samples and cache


def test_samples_table() -> None:
    assert set(SAMPLES) == {
        "tubingen",
        "shipwreck",
        "starry_night",
        "the_scream",
        "composition_vii",
        "woman_with_hat",
        "astronaut",
    }
    for name, sample in SAMPLES.items():
        assert sample.name == name
        assert re.fullmatch(r"[0-9a-f]{64}", sample.sha256)
        assert sample.url.startswith("https://") and sample.url.endswith((".jpg", ".png"))
        assert sample.file.endswith((".jpg", ".png")) and Path(sample.url).suffix == Path(sample.file).suffix
        assert sample.title and sample.credit and sample.license


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STYLELAB_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("STYLELAB_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "stylelab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "stylelab"


@pytest.fixture(autouse=True)
def direct_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep loopback downloads away from any proxy configured in the environment."""
    # urllib freezes the proxy list on first use but reads no_proxy on every request.
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackServer:
    """Serves files from one folder on 127.0.0.1 and counts the requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests = 0
        server = self

        class Counting(_QuietHandler):
            def do_GET(self) -> None:
                server.requests += 1
                super().do_GET()

        handler = partial(Counting, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.running = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.running = False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoopbackServer]:
    root = tmp_path / "served"
    root.mkdir()
    loopback = LoopbackServer(root)
    yield loopback
    loopback.stop()


def served_sample(server: LoopbackServer, *, sha256: str | None = None) -> SampleImage:
    path = saved(palette_image().convert("RGB"), server.root / "x.png")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return SampleImage(
        name="tiny",
        file="tiny.png",
        url=server.url("x.png"),
        sha256=sha256 or digest,
        title="Tiny test picture",
        credit="the tests",
        license="public domain",
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fetch_sample_downloads_once(server: LoopbackServer, tmp_path: Path) -> None:
    sample = served_sample(server)
    folder = tmp_path / "cache" / "images"
    path = fetch_sample(sample, folder=folder, progress=False)
    assert path == folder / "tiny.png"
    assert path.read_bytes() == (server.root / "x.png").read_bytes()
    assert only_files(folder) == ["tiny.png"]
    assert server.requests == 1
    assert_rgb(load_image(path), 0, 2, (0.0, 0.0, 1.0))

    server.stop()  # a second download attempt would now fail
    assert fetch_sample(sample, folder=folder, progress=False) == path


def test_fetch_sample_uses_cache_dir(server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLELAB_CACHE", str(tmp_path / "envcache"))
    path = fetch_sample(served_sample(server), progress=False)
    assert path == tmp_path / "envcache" / "images" / "tiny.png"
    assert path.is_file()


def test_fetch_sample_wrong_hash(server: LoopbackServer, tmp_path: Path) -> None:
    sample = served_sample(server, sha256="0" * 64)
    folder = tmp_path / "images"
    with pytest.raises(StyleLabError) as info:
        fetch_sample(sample, folder=folder, progress=False)
    message = str(info.value)
    assert sample.url in message and "0" * 64 in message
    assert only_files(folder) == []


def test_fetch_sample_corrupt_cached_file(server: LoopbackServer, tmp_path: Path) -> None:
    sample = served_sample(server)
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "tiny.png").write_bytes(b"damaged")
    with pytest.raises(StyleLabError, match=r"cached image '.*tiny\.png' is corrupt.*delete it"):
        fetch_sample(sample, folder=folder, progress=False)
    assert server.requests == 0


def test_fetch_sample_unreachable(tmp_path: Path) -> None:
    sample = SampleImage(
        name="gone",
        file="gone.jpg",
        url=f"http://127.0.0.1:{closed_port()}/gone.jpg",
        sha256="ab" * 32,
        title="Gone",
        credit="nobody",
        license="none",
    )
    folder = tmp_path / "images"
    with pytest.raises(StyleLabError) as info:
        fetch_sample(sample, folder=folder, progress=False)
    message = str(info.value)
    # one sentence: the reason, then the file with its full URL, its full sha256 and the folder it goes in
    assert message.startswith("1 file could not be downloaded (")
    assert message.endswith(
        f"put it into its folder, then run again: gone.jpg from {sample.url} (sha256 {'ab' * 32}) into {folder}"
    )
    assert only_files(folder) == []


def test_fetch_sample_http_404(server: LoopbackServer, tmp_path: Path) -> None:
    sample = served_sample(server)
    missing = SampleImage(**{**sample.__dict__, "url": server.url("missing.png")})
    with pytest.raises(StyleLabError, match=r"^1 file could not be downloaded \(HTTP 404 .*: tiny.png from "):
        fetch_sample(missing, folder=tmp_path / "images", progress=False)


# ---------------------------------------------------------------- resolve_image / describe


def test_resolve_existing_file(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (2, 2)), tmp_path / "mine.png")
    assert resolve_image(str(path)) == path


def test_resolve_sample_name_uses_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[str] = []

    def fake_fetch(sample: SampleImage, **kwargs: object) -> Path:
        fetched.append(sample.name)
        return tmp_path / sample.file

    monkeypatch.setattr(samples, "fetch_sample", fake_fetch)
    assert resolve_image("starry_night") == tmp_path / "starry_night.jpg"
    assert fetched == ["starry_night"]


def test_resolve_unknown(tmp_path: Path) -> None:
    with pytest.raises(StyleLabError) as info:
        resolve_image(str(tmp_path / "nothing.png"))
    message = str(info.value)
    assert "nothing.png' is neither a file nor a sample name" in message
    assert "tubingen" in message and "starry_night" in message


def test_describe() -> None:
    line = describe("starry_night")
    assert "The Starry Night (1889)" in line
    assert "Vincent van Gogh" in line and "public domain" in line
    assert "\n" not in line
    assert describe("photos/me.jpg") == "photos/me.jpg"

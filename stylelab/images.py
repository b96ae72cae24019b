"""Reading, resizing and writing images, plus the small set of sample pictures.

Images travel through the project as (3, H, W) float32 RGB tensors in [0, 1].
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import struct
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError

import numpy as np
import torch
import torch.hub
import torchvision.transforms.functional as TF
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode

from stylelab.errors import StyleLabError

# Modes whose pixels are wider than 8 bits; Pillow's convert("RGB") would clip them at 255.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_MODES_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
# A stalled server must not hang a run forever; torch.hub's urlopen has no timeout of its own.
_DOWNLOAD_TIMEOUT_S = 60.0
# Pillow raises these (besides OSError) on broken or truncated image data.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


# ---------------------------------------------------------------- loading


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read any image Pillow understands as a (3, H, W) float32 RGB tensor in [0, 1]."""
    path = Path(path)
    try:
        # The bomb warning is replaced by our own explicit size check below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _refuse_huge(im, path)
                pixels = _to_rgb_array(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise StyleLabError(f"image '{path}' is too large to load safely: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise StyleLabError(f"cannot read image '{path}': {_read_reason(exc)}") from None
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """An in-memory PIL image (any mode) as a (3, H, W) float32 RGB tensor in [0, 1]."""
    return torch.from_numpy(_to_rgb_array(im)).permute(2, 0, 1).contiguous()


def _refuse_huge(im: Image.Image, path: Path) -> None:
    """Stop before decoding: Image.open only parsed the header, so this is still cheap."""
    limit = Image.MAX_IMAGE_PIXELS
    pixels = im.width * im.height
    if limit is not None and pixels > limit:
        raise StyleLabError(
            f"image '{path}' has {pixels} pixels, more than the limit of {limit} "
            "(PIL.Image.MAX_IMAGE_PIXELS), so it is refused as a possible decompression bomb."
        )


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Decode to an (H, W, 3) float32 array in [0, 1], keeping 16-bit precision."""
    if im.mode in _WIDE_GRAY_MODES:
        gray = np.asarray(im).astype(np.float32) / 65535.0
        gray = np.clip(gray, 0.0, 1.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode in _MODES_WITH_ALPHA or "transparency" in im.info:
        return _composite_on_white(im)
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _composite_on_white(im: Image.Image) -> np.ndarray:
    # Done in float rather than with Pillow so half-transparent pixels are not rounded twice.
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    rgb, alpha = rgba[:, :, :3], rgba[:, :, 3:]
    return rgb * alpha + (1.0 - alpha)


def _read_reason(exc: BaseException) -> str:
    """A short, path-free explanation of why a file could not be read."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image format Pillow recognises"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------- resizing


def resize_longest(img: torch.Tensor, size: int) -> torch.Tensor:
    """Scale so the longest side is `size` pixels, keeping the aspect ratio."""
    _check_size(size)
    height, width = img.shape[-2:]
    scale = size / max(height, width)
    hw = (max(1, round(height * scale)), max(1, round(width * scale)))
    return resize_to(img, hw)


def resize_to(img: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Scale to exactly (H, W) with antialiased bicubic filtering."""
    height, width = hw
    _check_size(height)
    _check_size(width)
    resized = TF.resize(
        img, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True
    )
    # Bicubic overshoots near hard edges; the rest of the code assumes [0, 1].
    return resized.clamp(0.0, 1.0)


def _check_size(size: int) -> None:
    if size < 1:
        raise StyleLabError(f"image size must be at least 1 pixel, got {size}.")


# ---------------------------------------------------------------- writing


def to_pil(img: torch.Tensor) -> Image.Image:
    """Turn a (3, H, W) or (1, 3, H, W) tensor into an 8-bit RGB Pillow image."""
    if img.dim() == 4 and img.shape[0] == 1:
        img = img[0]
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) or (1, 3, H, W) tensor, got {tuple(img.shape)}")
    # Rounding here, not truncation inside torchvision, keeps save/load within 1/255.
    as_bytes = img.detach().float().cpu().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return TF.to_pil_image(as_bytes, mode="RGB")


def save_image(img: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a PNG (whatever the suffix) atomically, creating parent folders."""
    path = Path(path)
    picture = to_pil(img)
    write_atomic(path, lambda f: picture.save(f, format="PNG"))
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Let `write` fill a temp file next to `path`, then move it into place in one step.

    Readers never see a half-written file, and a failure leaves no file behind.
    OS-level failures become StyleLabError; anything else `write` raises passes through.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_file(tmp) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise StyleLabError(f"cannot write '{path}': {_read_reason(exc)}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def _exclusive_file(path: Path) -> Iterator[BinaryIO]:
    # os.open with 0o666 (unlike mkstemp's 0o600) gives the file the usual umask permissions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        yield f


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# ---------------------------------------------------------------- samples


@dataclass(frozen=True)
class SampleImage:
    name: str
    file: str
    url: str
    sha256: str
    title: str
    credit: str
    license: str


# Raw files pinned to one commit, so the sha256 values below stay valid.
_JCJ = (
    "https://raw.githubusercontent.com/jcjohnson/neural-style/"
    "07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/examples/inputs"
)
_KAUTENJA = (
    "https://raw.githubusercontent.com/Kautenja/a-neural-algorithm-of-artistic-style/"
    "f86601c5dc94ed9f5ad31a0132e844544ec3141f/img/styles-web"
)

_SAMPLE_LIST = (
    SampleImage(
        name="tubingen",
        file="tubingen.jpg",
        url=f"{_JCJ}/tubingen.jpg",
        sha256="e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
        title="Neckarfront, Tübingen (photo)",
        credit="Andreas Praefcke",
        license="CC BY 3.0",
    ),
    SampleImage(
        name="shipwreck",
        file="shipwreck.jpg",
        url=f"{_JCJ}/shipwreck.jpg",
        sha256="4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
        title="The Shipwreck of the Minotaur (c. 1805-1810)",
        credit="J. M. W. Turner",
        license="public domain",
    ),
    SampleImage(
        name="starry_night",
        file="starry_night.jpg",
        url=f"{_JCJ}/starry_night.jpg",
        sha256="0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
        title="The Starry Night (1889)",
        credit="Vincent van Gogh",
        license="public domain",
    ),
    SampleImage(
        name="the_scream",
        file="the_scream.jpg",
        url=f"{_JCJ}/the_scream.jpg",
        sha256="f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
        title="The Scream (1893)",
        credit="Edvard Munch",
        license="public domain",
    ),
    SampleImage(
        name="composition_vii",
        file="composition_vii.jpg",
        url=f"{_KAUTENJA}/composition-vii.jpg",
        sha256="28105ff3aaa15dab14aeea9e68aab8e53830643ae88b531a03828588d1d33065",
        title="Composition VII (1913), small web copy",
        credit="Wassily Kandinsky",
        license="public domain",
    ),
    SampleImage(
        name="woman_with_hat",
        file="woman-with-hat-matisse.jpg",
        url=f"{_JCJ}/woman-with-hat-matisse.jpg",
        sha256="6a8b2383d9c110354a97a42c74bdcc5341be879cbb842ddb7ab5843dbdf56d53",
        title="Woman with a Hat (1905)",
        credit="Henri Matisse",
        license="public domain (US; author died 1954)",
    ),
)

SAMPLES: dict[str, SampleImage] = {sample.name: sample for sample in _SAMPLE_LIST}


def cache_dir() -> Path:
    """$STYLELAB_CACHE, else $XDG_CACHE_HOME/stylelab, else ~/.cache/stylelab."""
    explicit = os.environ.get("STYLELAB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "stylelab"
    return Path.home() / ".cache" / "stylelab"


def fetch_sample(
    sample: SampleImage, *, folder: Path | None = None, progress: bool = True
) -> Path:
    """Return the local copy of a sample image, downloading it once if needed."""
    folder = Path(folder) if folder is not None else cache_dir() / "images"
    dst = folder / sample.file
    if dst.exists():
        _verify_cached(sample, dst)
        return dst
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StyleLabError(
            f"cannot create the image folder '{folder}': {_read_reason(exc)}"
        ) from None
    _download(sample, dst, progress)
    return dst


def _verify_cached(sample: SampleImage, dst: Path) -> None:
    try:
        digest = _sha256_of(dst)
    except OSError as exc:
        raise StyleLabError(f"cannot read cached image '{dst}': {_read_reason(exc)}") from None
    if digest != sample.sha256:
        raise StyleLabError(
            f"cached image '{dst}' is corrupt (sha256 {digest[:12]}... instead of "
            f"{sample.sha256[:12]}...); delete it so it is downloaded again."
        )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(sample: SampleImage, dst: Path, progress: bool) -> None:
    try:
        with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(
                sample.url, str(dst), hash_prefix=sample.sha256, progress=progress
            )
    except (OSError, http.client.HTTPException) as exc:
        raise StyleLabError(
            f"could not download {sample.name} from {sample.url} ({_network_reason(exc)}); "
            f"put the file {sample.file} (sha256 {sample.sha256[:12]}...) into {dst.parent}"
        ) from None
    except RuntimeError:
        # torch.hub raises RuntimeError on a hash mismatch and has already deleted the file.
        raise StyleLabError(
            f"the file downloaded from {sample.url} does not have the expected "
            f"sha256 {sample.sha256}, so it was not kept."
        ) from None


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------- specs


def resolve_image(spec: str | os.PathLike) -> Path:
    """A sample name gives its cached file; anything else must be an existing file."""
    if isinstance(spec, str) and spec in SAMPLES:
        return fetch_sample(SAMPLES[spec])
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    names = ", ".join(SAMPLES)
    raise StyleLabError(f"image '{spec}' is neither a file nor a sample name ({names}).")


def describe(spec: str | os.PathLike) -> str:
    """One line for logs: where a picture comes from and under which license."""
    if isinstance(spec, str) and spec in SAMPLES:
        sample = SAMPLES[spec]
        return f"{sample.title}, {sample.credit} ({sample.license})"
    return str(spec)

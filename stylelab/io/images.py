"""Reading, resizing and writing images. Images travel through stylelab as (3, H, W) float32 RGB in [0, 1]."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from stylelab.errors import StyleLabError
from stylelab.io.atomic import read_reason, write_atomic

# Modes whose pixels are wider than 8 bits; Pillow's convert("RGB") would clip them at 255.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_MODES_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
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
        raise StyleLabError(f"cannot read image '{path}': {read_reason(exc)}") from None
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
    # what torchvision's resize does with a float tensor (BICUBIC, antialias=True), without importing it
    batch = img if img.dim() == 4 else img[None]
    resized = F.interpolate(batch, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    resized = resized if img.dim() == 4 else resized[0]
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
    return Image.fromarray(as_bytes.permute(1, 2, 0).numpy(), mode="RGB")


def save_image(img: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a PNG (whatever the suffix) atomically, creating parent folders."""
    path = Path(path)
    picture = to_pil(img)
    write_atomic(path, lambda f: picture.save(f, format="PNG"))
    return path

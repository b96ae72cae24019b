"""The weight files people already have for a VGG, and the input each one expects.

    torchvision  .pth in torchvision's layout; RGB in [0, 1] minus the ImageNet mean, over the ImageNet std
    caffe        .pth in the same layout (jcjohnson/pytorch-vgg's conversions of the original Caffe VGG16 and
                 VGG19); BGR in [0, 255] minus the Caffe mean pixel
    matconvnet   imagenet-vgg-verydeep-16.mat or -19.mat; RGB in [0, 255] minus the mean pixel stored in the file

The input convention travels with the weights, so a picture gives the same responses whichever file holds
them. This module knows file formats only; vgg.py turns what it reads into the network.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import torch

from stylelab.choices import Format
from stylelab.errors import StyleLabError

FORMATS: tuple[str, ...] = get_args(Format)

# What torchvision's ImageNet weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # on the [0, 255] scale, in the network's B, G, R order


@dataclass(frozen=True)
class InputConvention:
    """How a weight file wants its input: x_net = (x_rgb01 * scale - mean) / std, channels maybe BGR.

    mean and std are in the network's channel order (B, G, R when bgr is true).
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0
    bgr: bool = False


TORCHVISION = InputConvention()
CAFFE = InputConvention(mean=CAFFE_MEAN_BGR, std=(1.0, 1.0, 1.0), scale=255.0, bgr=True)


def matconvnet_convention(mean_rgb) -> InputConvention:
    """MatConvNet networks take RGB in [0, 255] minus the mean pixel their file stores."""
    return InputConvention(mean=tuple(float(m) for m in mean_rgb), std=(1.0, 1.0, 1.0), scale=255.0, bgr=False)


# What each format's files expect (MatConvNet files store their own mean pixel: matconvnet_convention).
CONVENTIONS = {"torchvision": TORCHVISION, "caffe": CAFFE}

# torch.hub and jcjohnson/pytorch-vgg name files <name>-<first 8 hex digits of their sha256>.pth, so the
# name identifies a file without reading it, and the hash still does after a rename. Each network lists its
# own known files (vgg.ARCHS).
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8})$")

# Files written by stylelab-normalize hold their input convention under this key, next to the tensors.
# It is a plain dict, so torch.load(..., weights_only=True) reads it; other tools must pop it first.
MARKER = "stylelab.input"


@dataclass(frozen=True)
class Weights:
    """A network's features ("0.weight", ...) and the input they expect; `format` says which kind of file they
    came from (torchvision | caffe | matconvnet), `normalised` whether stylelab-normalize wrote it."""

    state: dict[str, torch.Tensor]
    convention: InputConvention
    format: str
    normalised: bool = False


def read_pth(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """A .pth file's tensors, and the input-convention marker stylelab-normalize leaves in its files."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same to the user
        raise StyleLabError(f"cannot read weights file {path} as a PyTorch state dict ({type(exc).__name__})") from None
    marker = state.pop(MARKER, None) if isinstance(state, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StyleLabError(f"weights file {path} does not hold a state dict of tensors")
    return state, marker


def check_format(format: str) -> None:
    if format not in FORMATS:
        raise StyleLabError(f"model.format must be one of {', '.join(FORMATS)}, not {format!r}")


def is_matconvnet(path: Path, format: str) -> bool:
    """Whether `path` is to be read as a MatConvNet .mat file (explicitly, or auto by its suffix)."""
    return format == "matconvnet" or (format == "auto" and path.suffix.lower() == ".mat")


def pth_convention(path: Path, format: str, marker: dict | None, known: dict[str, str]) -> tuple[InputConvention, str]:
    """The input convention of a torchvision-layout .pth file, and the format it was decided by.

    A stylelab-normalize marker wins; then an explicit model.format; then the file's name or sha256, looked up
    in `known` ({sha256 prefix: format}, the network's known files). The
    torchvision and Caffe files have the same keys and shapes, and their trained conv1_1 weights have the same
    magnitude (Caffe's were trained on [0, 255] input but are not ~255x smaller), so no statistic of the
    weights tells them apart reliably: an unknown file is an error that asks for model.format.
    """
    if marker is not None:
        convention, origin = convention_from_marker(marker, path)
        if format not in ("auto", origin):
            raise StyleLabError(
                f"{path} was written by stylelab-normalize from {origin} weights and records its own input "
                f"convention; load it with model.format=auto, not {format}"
            )
        return convention, origin
    if format in CONVENTIONS:
        return CONVENTIONS[format], format
    found = known_format(path, known)
    if found is not None:
        return CONVENTIONS[found], found
    raise StyleLabError(
        f"cannot tell whether {path.name} expects torchvision's input (RGB in [0, 1], ImageNet mean and std) "
        f"or Caffe's (BGR in [0, 255] minus the mean pixel), because both kinds of file look the same; "
        f"add model.format=torchvision or model.format=caffe"
    )


def known_format(path: Path, known: dict[str, str]) -> str | None:
    """torchvision / caffe for a known file ({sha256 prefix: format}; by the hash in its name, else by hashing)."""
    match = _HASH_IN_NAME.search(path.stem)
    if match and match.group(1) in known:
        return known[match.group(1)]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return known.get(digest.hexdigest()[:8])


def marker(convention: InputConvention, origin: str, note: str = "") -> dict:
    """The MARKER entry that makes a written file carry its input convention."""
    return {
        "format": origin,
        "mean": [float(m) for m in convention.mean],
        "std": [float(s) for s in convention.std],
        "scale": float(convention.scale),
        "bgr": bool(convention.bgr),
        "note": note,
    }


def convention_from_marker(entry, path: Path) -> tuple[InputConvention, str]:
    try:
        convention = InputConvention(
            mean=tuple(float(m) for m in entry["mean"]),
            std=tuple(float(s) for s in entry["std"]),
            scale=float(entry["scale"]),
            bgr=bool(entry["bgr"]),
        )
        origin = str(entry["format"])
        ok = len(convention.mean) == len(convention.std) == 3 and origin in FORMATS[1:]
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise StyleLabError(f"{path} has a damaged {MARKER!r} entry; write it again with stylelab-normalize")
    return convention, origin


# ---------------------------------------------------------------- MatConvNet


def read_matconvnet(path: Path) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], InputConvention]:
    """The feature convs of a MatConvNet simplenn .mat (its conv layers but the classifier's fc6, fc7, fc8) as
    torch (weight, bias) in network order, and the input the file expects.

    Both nestings of imagenet-vgg-verydeep-16/19.mat are read, fields by name: the old one (top-level
    `normalization`, layer struct fields weights, pad, type, name, ...) and the newer one (`meta.normalization`,
    fields name, type, weights, ...). Kernels are H x W x Cin x Cout; following a pure-MATLAB replica of
    vl_nnconv the first axis is height, so the torch weight is kernels.transpose(3, 2, 0, 1). (No real file was
    at hand to confirm the order; a popular TensorFlow port swaps H and W.)
    """
    try:
        from scipy import io as sio  # optional: only this format needs SciPy
    except ImportError:
        raise StyleLabError(
            "reading MatConvNet .mat weights needs SciPy; install it with pip install 'stylelab[matconvnet]'"
        ) from None
    try:
        mat = sio.loadmat(str(path), variable_names=("layers", "normalization", "meta"))
    except (NotImplementedError, ValueError, TypeError, OSError) as exc:  # v7.3 (HDF5) files: NotImplementedError
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StyleLabError(f"cannot read {path} as a MatConvNet .mat file ({reason})") from None
    if "layers" not in mat:
        raise StyleLabError(f"{path} has no 'layers' variable, so it is not a MatConvNet simplenn network")

    convs = []
    for cell in mat["layers"].ravel():  # a 1 x N cell array of 1 x 1 structs
        layer = _record(cell, path)
        if _text(layer, "type") != "conv" or _text(layer, "name").startswith("fc"):
            continue  # the classifier's layers are convs in MatConvNet too
        kernels, bias = _conv_params(layer, path)  # (H, W, Cin, Cout), Cout values
        weight = torch.from_numpy(np.ascontiguousarray(kernels.transpose(3, 2, 0, 1), dtype=np.float32))
        convs.append((weight, torch.from_numpy(np.asarray(bias, dtype=np.float32).reshape(-1).copy())))
    return convs, matconvnet_convention(_mean_pixel(mat, path))


def _record(cell, path: Path):
    record = np.asarray(cell).ravel()
    if record.size != 1 or record.dtype.names is None:
        raise StyleLabError(f"{path} holds layers that are not MatConvNet simplenn structs")
    return record[0]


def _field(record, name: str, path: Path):
    if name not in (record.dtype.names or ()):
        raise StyleLabError(f"{path} has no field {name!r} where a MatConvNet network has one")
    return record[name]


def _text(record, name: str) -> str:
    value = np.asarray(record[name]).ravel() if name in (record.dtype.names or ()) else ()
    return str(value[0]) if len(value) else ""


def _conv_params(layer, path: Path):
    if "weights" in layer.dtype.names:  # a 1 x 2 cell {kernels, bias}
        kernels, bias = np.asarray(layer["weights"]).ravel()[:2]
    else:  # the oldest files keep them in two fields
        kernels, bias = _field(layer, "filters", path), _field(layer, "biases", path)
    kernels = np.asarray(kernels)
    if kernels.ndim != 4:
        raise StyleLabError(f"{path} has a conv layer whose kernels have shape {kernels.shape}, not H x W x Cin x Cout")
    return kernels, bias


def _mean_pixel(mat: dict, path: Path) -> np.ndarray:
    """The mean RGB pixel on the [0, 255] scale, from averageImage (a whole mean image or one pixel)."""
    if "meta" in mat:
        normalization = _record(_field(_record(mat["meta"], path), "normalization", path), path)
    elif "normalization" in mat:
        normalization = _record(mat["normalization"], path)
    else:
        raise StyleLabError(f"{path} has neither 'normalization' nor 'meta', so its mean pixel is unknown")
    average = np.asarray(_field(normalization, "averageImage", path), dtype=np.float64)
    if average.size == 0 or average.size % 3:
        raise StyleLabError(f"{path} has an averageImage of shape {average.shape}, not H x W x 3 or 3 values")
    return average.reshape(-1, 3).mean(axis=0)  # (3,) R, G, B: MATLAB's colour axis is the last one

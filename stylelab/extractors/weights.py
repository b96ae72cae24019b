"""VGG19 weight files people already have, and the input each one expects.

    torchvision  .pth in torchvision's layout; RGB in [0, 1] minus the ImageNet mean, over the ImageNet std
    caffe        .pth in the same layout (jcjohnson/pytorch-vgg's conversion of the original Caffe VGG19);
                 BGR in [0, 255] minus the Caffe mean pixel
    matconvnet   imagenet-vgg-verydeep-19.mat; RGB in [0, 255] minus the mean pixel stored in the file

The input convention travels with the weights, so a picture gives the same responses whichever file holds
them. This module knows file formats only; vgg.py turns what it reads into the network.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylelab.errors import StyleLabError

FORMATS = ("auto", "torchvision", "caffe", "matconvnet")

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


# torch.hub and jcjohnson/pytorch-vgg name files <name>-<first 8 hex digits of their sha256>.pth, so the
# name identifies a file without reading it, and the hash still does after a rename.
KNOWN_SHA256_PREFIXES = {"dcbb9e9d": "torchvision", "d01eb7cb": "caffe"}
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8})$")

# Files written by stylelab-normalize hold their input convention under this key, next to the tensors.
# It is a plain dict, so torch.load(..., weights_only=True) reads it; other tools must pop it first.
MARKER = "stylelab.input"


def check_format(format: str) -> None:
    if format not in FORMATS:
        raise StyleLabError(f"model.format must be one of {', '.join(FORMATS)}, not {format!r}")


def is_matconvnet(path: Path, format: str) -> bool:
    """Whether `path` is to be read as a MatConvNet .mat file (explicitly, or auto by its suffix)."""
    return format == "matconvnet" or (format == "auto" and path.suffix.lower() == ".mat")


def pth_convention(path: Path, format: str, marker: dict | None) -> tuple[InputConvention, str]:
    """The input convention of a torchvision-layout .pth file, and the format it was decided by.

    A stylelab-normalize marker wins; then an explicit model.format; then the file's name or sha256. The
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
    if format == "torchvision":
        return TORCHVISION, format
    if format == "caffe":
        return CAFFE, format
    known = known_format(path)
    if known == "torchvision":
        return TORCHVISION, known
    if known == "caffe":
        return CAFFE, known
    raise StyleLabError(
        f"cannot tell whether {path.name} expects torchvision's input (RGB in [0, 1], ImageNet mean and std) "
        f"or Caffe's (BGR in [0, 255] minus the mean pixel), because both kinds of file look the same; "
        f"add model.format=torchvision or model.format=caffe"
    )


def known_format(path: Path) -> str | None:
    """torchvision / caffe for the known VGG19 files (by the hash in the name, else by hashing), else None."""
    match = _HASH_IN_NAME.search(path.stem)
    if match and match.group(1) in KNOWN_SHA256_PREFIXES:
        return KNOWN_SHA256_PREFIXES[match.group(1)]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return KNOWN_SHA256_PREFIXES.get(digest.hexdigest()[:8])


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


def read_matconvnet(path: Path, count: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], InputConvention]:
    """The first `count` conv layers of a MatConvNet simplenn .mat as torch (weight, bias), and its input.

    Both nestings of imagenet-vgg-verydeep-19.mat are read, fields by name: the old one (top-level
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
        if _text(layer, "type") != "conv":
            continue
        kernels, bias = _conv_params(layer, path)  # (H, W, Cin, Cout), Cout values
        weight = torch.from_numpy(np.ascontiguousarray(kernels.transpose(3, 2, 0, 1), dtype=np.float32))
        convs.append((weight, torch.from_numpy(np.asarray(bias, dtype=np.float32).reshape(-1).copy())))
        if len(convs) == count:
            break
    if len(convs) < count:
        raise StyleLabError(f"{path} has {len(convs)} conv layers, fewer than the {count} of VGG19's features")
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

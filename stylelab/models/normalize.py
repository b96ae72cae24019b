"""The paper's normalised network: every conv filter of a VGG rescaled so its mean rectified response is 1.

Gatys et al. (CVPR 2016) scale each filter's weights and bias so that its mean activation over a set of
images and positions is 1. Dividing filter k of layer l by c_k > 0 divides its ReLU output by c_k (ReLU and
both poolings commute with a positive per-channel scale), so the next conv multiplies its input-channel-k
weights by c_k and computes what it computed before. Layer by layer, the normalised network's response at
relu_l is the original's divided by the original's mean c_l: one pass of the original network over the
images gives every c_l, and the normalised means are 1 by construction.

The means are taken with the network as given (max pooling, as trained, unless asked otherwise); the result
is the same function up to per-channel scale with either pooling. The arithmetic is float64: a filter that
barely fires has a mean near float32's rounding level, and only float64 gets its scale right to 1e-3 (the
file is written in float32, where such a filter's responses are rounding noise in any network).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.io.atomic import write_atomic
from stylelab.models import formats
from stylelab.models.arch import Arch, arch_of, layer_table
from stylelab.models.formats import InputConvention
from stylelab.models.vgg import VGGFeatures


def convs(arch: Arch) -> dict[str, int]:
    """The conv layers of `arch` in network order, with their index in torchvision's `features`."""
    return {name: index for name, index in layer_table(arch).items() if name.startswith("conv")}


@dataclass
class Normalized:
    state: dict[str, torch.Tensor]  # features ("0.weight", ...) of the normalised network, float64
    means: dict[str, torch.Tensor]  # conv name -> (C,) mean rectified response of the original network
    dead: dict[str, int]  # conv name -> filters whose mean was 0 on the images, left unscaled


def relu_means(
    state: dict[str, torch.Tensor],
    convention: InputConvention,
    pictures: list[torch.Tensor],
    *,
    arch: Arch | str = "vgg19",
    pooling: str = "max",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """conv name -> (C,) float64 mean of its ReLU output over all pictures and positions (network in `dtype`)."""
    if not pictures:
        raise StyleLabError("no calibration images: the means need at least one picture")
    arch = arch_of(arch)
    table = convs(arch)
    relus = ["relu" + name[len("conv") :] for name in table]
    net = VGGFeatures(relus, state, arch=arch, pooling=pooling, convention=convention).to(device, dtype)
    with torch.no_grad():  # VGGFeatures loads through float32 modules: put the exact values back
        for name, index in table.items():
            conv = net.net.get_submodule(name)
            conv.weight.copy_(state[f"{index}.weight"])
            conv.bias.copy_(state[f"{index}.bias"])
    sums = {name: torch.zeros((), dtype=torch.float64, device=device) for name in relus}
    counts = dict.fromkeys(relus, 0)
    with torch.no_grad():
        for picture in pictures:  # (3, H, W) RGB in [0, 1]; sizes may differ
            for name, response in net(picture[None].to(device, dtype)).items():  # (1, C, h, w)
                sums[name] = sums[name] + response.double().sum(dim=(0, 2, 3))
                counts[name] += response.shape[2] * response.shape[3]
    return {conv: (sums[relu] / counts[relu]).cpu() for conv, relu in zip(table, relus)}


def normalize_vgg(
    state: dict[str, torch.Tensor],
    convention: InputConvention,
    pictures: list[torch.Tensor],
    *,
    arch: Arch | str = "vgg19",
    pooling: str = "max",
    device: str | torch.device = "cpu",
) -> Normalized:
    """Rescale every filter to mean rectified response 1 on `pictures`; dead filters (mean 0) stay as they are."""
    arch = arch_of(arch)
    means = relu_means(state, convention, pictures, arch=arch, pooling=pooling, device=device)
    new = dict(state)
    dead = {}
    previous = None  # (C_in,) how much smaller the previous conv's outputs now are
    for name, index in convs(arch).items():
        mean = means[name]
        alive = mean > 0
        divisor = torch.where(alive, mean, torch.ones_like(mean))  # (C_out,)
        weight = state[f"{index}.weight"].double()  # (C_out, C_in, 3, 3)
        bias = state[f"{index}.bias"].double()  # (C_out,)
        if previous is not None:
            weight = weight * previous.view(1, -1, 1, 1)  # undo the scale of this layer's inputs
        weight = weight / divisor.view(-1, 1, 1, 1)
        bias = bias / divisor
        new[f"{index}.weight"], new[f"{index}.bias"] = weight, bias
        if not (weight.float().isfinite().all() and bias.float().isfinite().all()):
            raise StyleLabError(
                f"normalising {name} overflows (a filter barely responds to the images); calibrate on more images"
            )
        dead[name] = int((~alive).sum())
        previous = divisor
    return Normalized(new, means, dead)


def calibration_images(specs: list[str], size: int) -> list[torch.Tensor]:
    """Files and folders (their images, not recursively) -> pictures scaled to longest side `size`."""
    known = set(Image.registered_extensions())
    paths: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in known)
        elif path.is_file():
            paths.append(path)
        else:
            raise StyleLabError(f"calibration image {spec!r} is neither a file nor a folder")
    if not paths:
        raise StyleLabError(f"no images found in {', '.join(specs)}")
    return [images.resize_longest(images.load_image(p), size) for p in paths]


def save_normalized(path: str | Path, result: Normalized, convention: InputConvention, origin: str, note: str) -> Path:
    """Write features.* plus the input-convention marker, atomically, so model.weights=<path> needs no flags."""
    path = Path(path)
    payload: dict = {f"features.{key}": value.float().contiguous() for key, value in result.state.items()}
    payload[formats.MARKER] = formats.marker(convention, origin, note)
    write_atomic(path, lambda f: torch.save(payload, f))
    return path

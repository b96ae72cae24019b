"""A network's weights from where people have them: torchvision's ImageNet file (downloaded and cached by
torchvision), a .pth in torchvision's layout, a MatConvNet .mat, or seeded random weights (tests only);
checked against the network's architecture, with the input convention each expects (stylelab.models.formats).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

from stylelab.errors import Download, NotDownloaded, StyleLabError
from stylelab.io.samples import network_reason
from stylelab.models import formats
from stylelab.models.arch import ARCHS, Arch, arch_of, imagenet_weights, layer_table, skeleton
from stylelab.models.formats import TORCHVISION, InputConvention, Weights


def random_state_dict(arch: Arch | str = "vgg19", seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random features in torchvision's layout and init (for tests and smoke runs only)."""
    arch = arch_of(arch)
    return OrderedDict(_random_state_dict(arch.name, seed))  # a new dict each time; its tensors are never written to


@functools.lru_cache(maxsize=4)
def _random_state_dict(name: str, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for i, module in enumerate(skeleton(ARCHS[name])):
        if isinstance(module, nn.Conv2d):
            # torchvision's init for VGG convs: kaiming normal, fan_out, relu gain; zero bias
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            std = (2.0 / fan_out) ** 0.5
            state[f"features.{i}.weight"] = torch.randn(module.weight.shape, generator=gen) * std
            state[f"features.{i}.bias"] = torch.zeros(module.out_channels)
    return state


def imagenet_cache_file(arch: Arch | str = "vgg19") -> Path:
    """Where torchvision's loader caches the ImageNet file of this network ($TORCH_HOME/hub/checkpoints/...)."""
    arch = arch_of(arch)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(arch.imagenet_url)


def _imagenet_state_dict(arch: Arch, progress: bool) -> dict[str, torch.Tensor]:
    target = imagenet_cache_file(arch)
    try:
        # torchvision's own loader: downloads into the cache with a hash check, or reads the cached file
        return imagenet_weights(arch).get_state_dict(progress=progress)
    except (OSError, RuntimeError, ValueError) as exc:
        if target.exists():
            raise StyleLabError(
                f"the cached {arch.title} weights {target} cannot be read ({exc}); delete it to re-download"
            ) from None
        prefix = target.stem.rsplit("-", 1)[-1]  # torch.hub's names end in the first digits of the sha256
        raise NotDownloaded(
            [Download(target.name, arch.imagenet_url, target.parent, prefix, network_reason(exc))]
        ) from None


def download_imagenet(arch: Arch | str, progress: bool = True) -> list[Download]:
    """torchvision's ImageNet file of `arch` fetched into its cache now, if it is not there yet; what could not
    be downloaded, so that a run names every missing file at once."""
    arch = arch_of(arch)
    if imagenet_cache_file(arch).exists():
        return []
    try:
        _imagenet_state_dict(arch, progress)
    except NotDownloaded as exc:
        return exc.downloads
    return []


def _matconvnet_state_dict(arch: Arch, path: Path) -> tuple[dict[str, torch.Tensor], InputConvention]:
    """A MatConvNet .mat in torchvision's layout: its k-th conv layer becomes the network's k-th conv."""
    params, convention = formats.read_matconvnet(path)
    counts = {a.name: sum(name.startswith("conv") for name in layer_table(a)) for a in ARCHS.values()}
    if len(params) != counts[arch.name]:
        other = next((a for a in ARCHS.values() if counts[a.name] == len(params)), None)
        if other is not None:
            raise StyleLabError(f"{path} holds {other.title} weights, not {arch.title}; use model={other.name}")
        raise StyleLabError(
            f"{path} has {len(params)} conv layers before its classifier, not the "
            f"{counts[arch.name]} of {arch.title}'s features"
        )
    convs = [index for name, index in layer_table(arch).items() if name.startswith("conv")]
    state = {}
    for index, (weight, bias) in zip(convs, params):
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = weight, bias
    return state, convention


def features_state_dict(
    state: dict[str, torch.Tensor], source: str, arch: Arch | str = "vgg19"
) -> dict[str, torch.Tensor]:
    """Check a torchvision-layout state dict of `arch` (full model or features.* only); return its features.

    Keys are returned relative to `features` ("0.weight", ...). A file of another network of the family is
    named as such.
    """
    arch = arch_of(arch)
    features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    problems = _problems(state, features, arch)
    if problems:
        other = next((a for a in ARCHS.values() if a is not arch and not _problems(state, features, a)), None)
        if other is not None:
            raise StyleLabError(f"{source} holds {other.title} weights, not {arch.title}; use model={other.name}")
        raise StyleLabError(f"{source} is not a torchvision {arch.title} state dict: {'; '.join(problems)}")
    return {k: v.float() for k, v in features.items()}


def _problems(state: dict, features: dict, arch: Arch) -> list[str]:
    expected = {
        f"{i}.{p}": tuple(getattr(m, p).shape)
        for i, m in enumerate(skeleton(arch))
        if isinstance(m, nn.Conv2d)
        for p in ("weight", "bias")
    }
    stray = [k for k in state if not k.startswith(("features.", "classifier."))]
    missing = sorted(set(expected) - set(features), key=_key_order)
    unexpected = sorted(set(features) - set(expected), key=_key_order)
    problems = []
    if stray:
        problems.append(f"keys outside features./classifier.: {', '.join(stray[:5])}")
    if missing:
        problems.append(f"missing {', '.join('features.' + k for k in missing[:5])}")
    if unexpected:
        problems.append(f"unexpected {', '.join('features.' + k for k in unexpected[:5])}")
    for key, shape in expected.items():
        if key in features and tuple(features[key].shape) != shape:
            problems.append(f"features.{key} has shape {tuple(features[key].shape)}, expected {shape}")
    return problems


def _key_order(key: str) -> tuple[int, str]:
    index, _, rest = key.partition(".")
    return (int(index), rest) if index.isdigit() else (-1, key)


def load_weights(
    arch: Arch | str, weights: str, *, format: str = "auto", seed: int = 0, progress: bool = True
) -> Weights:
    """`imagenet`, `random` or a weights file (.pth in torchvision's layout, .mat) of `arch` -> Weights.

    `format` (auto | torchvision | caffe | matconvnet) says how a file wants its input; auto decides from the
    file itself and refuses to guess (see formats.pth_convention).
    """
    arch = arch_of(arch)
    formats.check_format(format)
    if weights in ("imagenet", "random"):
        if format not in ("auto", "torchvision"):
            raise StyleLabError(
                f"model.weights={weights} is torchvision's {arch.title}, so model.format must be "
                f"auto or torchvision, not {format}"
            )
        if weights == "imagenet":
            state = features_state_dict(
                _imagenet_state_dict(arch, progress), f"torchvision's ImageNet {arch.title}", arch
            )
            return Weights(state, TORCHVISION, "torchvision")
        warnings.warn(
            f"model.weights=random: the {arch.title} has random weights, so the output is NOT meaningful "
            f"art (use it for tests and smoke runs only)",
            stacklevel=2,
        )
        state = features_state_dict(random_state_dict(arch, seed), "random weights", arch)
        return Weights(state, TORCHVISION, "torchvision")
    path = Path(weights).expanduser()
    if path.is_dir():
        raise StyleLabError(f"model.weights={path} is a folder; give the weights file itself (a .pth or a .mat)")
    if not path.is_file():
        raise StyleLabError(
            f"weights file {path} does not exist; model.weights takes imagenet, random, a .pth or a .mat path"
        )
    if formats.is_matconvnet(path, format):
        state, convention = _matconvnet_state_dict(arch, path)
        return Weights(features_state_dict(state, str(path), arch), convention, "matconvnet")
    state, marker = formats.read_pth(path)
    features = features_state_dict(state, str(path), arch)  # a wrong file is named before its format is asked for
    convention, origin = formats.pth_convention(path, format, marker, arch.known)
    return Weights(features, convention, origin, normalised=marker is not None)

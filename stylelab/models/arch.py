"""The VGG family as one table: each network's convs per block, its ImageNet weights in torchvision and the
other files it is known by. Everything else follows from the table: the layer names in network order
(conv1_1, relu1_1, ..., pool5) and the torchvision module index of each. Nothing outside stylelab.models
counts indices; a third network of the family is one more row here and one YAML in configs/model/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn as nn

from stylelab.choices import Pooling

POOLINGS: tuple[str, ...] = get_args(Pooling)
CHANNELS = (64, 128, 256, 512, 512)  # filters of the five blocks, the same in every VGG


@dataclass(frozen=True)
class Arch:
    """One network of the VGG family."""

    name: str  # vgg19
    blocks: tuple[int, ...]  # convs per block, each block followed by a 2 x 2 pool
    imagenet: str  # torchvision's ImageNet weights (model.weights=imagenet), as torchvision.models names them
    imagenet_url: str  # their URL (the file name ends in the sha256's first digits): the cache path, no import
    known: dict[str, str]  # sha256 prefix in a file's name -> its format (model.format=auto knows these files)
    matconvnet: str  # the name of MatConvNet's file of this network

    @property
    def title(self) -> str:
        return self.name.upper()


ARCHS: dict[str, Arch] = {
    "vgg16": Arch(
        "vgg16",
        (2, 2, 3, 3, 3),
        "VGG16_Weights.IMAGENET1K_V1",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        {"397923af": "torchvision", "00b39a1b": "caffe"},
        "imagenet-vgg-verydeep-16.mat",
    ),
    "vgg19": Arch(
        "vgg19",
        (2, 2, 4, 4, 4),
        "VGG19_Weights.IMAGENET1K_V1",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        {"dcbb9e9d": "torchvision", "d01eb7cb": "caffe"},
        "imagenet-vgg-verydeep-19.mat",
    ),
}


def layer_table(arch: Arch) -> dict[str, int]:
    """Layer name -> index in torchvision's `features` of this network, in network order."""
    table: dict[str, int] = {}
    index = 0
    for block, convs in enumerate(arch.blocks, start=1):
        for k in range(1, convs + 1):
            table[f"conv{block}_{k}"] = index
            table[f"relu{block}_{k}"] = index + 1
            index += 2
        table[f"pool{block}"] = index
        index += 1
    return table


def imagenet_weights(arch: Arch):
    """torchvision's WeightsEnum entry of the ImageNet weights, which downloads and checks the file.

    torchvision is imported here, where it is used, not when stylelab is: importing it takes a second or more
    (it loads torch._dynamo), which `stylelab --help`, composing a config and a run on a weights file of its
    own need not pay."""
    import torchvision.models

    enum, _, member = arch.imagenet.partition(".")
    return getattr(getattr(torchvision.models, enum), member)


def skeleton(arch: Arch) -> nn.Sequential:
    """The `features` of this network with no weights loaded, module for module torchvision's (its
    `make_layers`: 3 x 3 convs with padding 1, each followed by an in-place ReLU, and a 2 x 2 max pool after
    each block; tests/models/test_arch.py compares the two). Built here, not by torchvision, so that a run on
    random weights or a weights file imports no torchvision (a second or more). Its parameters are on the meta
    device (shapes, no values, no time spent initialising them): load weights with load_state_dict(...,
    assign=True)."""
    layers: list[nn.Module] = []
    channels_in = 3
    with torch.device("meta"):
        for convs, channels in zip(arch.blocks, CHANNELS):
            for _ in range(convs):
                layers += [nn.Conv2d(channels_in, channels, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels_in = channels
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def arch_of(arch: Arch | str) -> Arch:
    """A row of the table, by itself or by its name."""
    return ARCHS[arch] if isinstance(arch, str) else arch

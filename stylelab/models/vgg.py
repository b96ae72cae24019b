"""The VGG family as models that know their architecture, and the feature extractor they build.

A model (VGG, what configs/model/<name>.yaml builds) owns its layer names in network order and the check
that names the valid ones, the smallest input each layer needs, the path a mask takes through the receptive
fields to each layer, and its weight files with their input conventions. Building one reads nothing;
`features` loads the weights and returns the extractor, a truncated torchvision VGG with hooks.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from stylelab.errors import Download, StyleLabError
from stylelab.models import formats
from stylelab.models.arch import ARCHS, CHANNELS, POOLINGS, Arch, Pooling, arch_of, layer_table, skeleton
from stylelab.models.formats import TORCHVISION, Format, InputConvention, Weights
from stylelab.models.weights import download_imagenet, imagenet_cache_file, load_weights

# ---------------------------------------------------------------- the model a config builds


class VGG:
    """A VGG network as stylelab uses it: its layers by name, their receptive fields, and its weights.

    Building one reads nothing; `features` loads the weights and returns the extractor. `weights` is
    imagenet (torchvision's file, downloaded and cached), random (seeded, for tests and smoke runs only: the
    output is not meaningful art) or a path to a .pth in torchvision's layout or a MatConvNet .mat.
    `format` is the input the file expects (see weights.py); auto never guesses. `checkpointing` recomputes
    the activations in the backward pass: less memory, slower steps.
    """

    def __init__(
        self,
        arch: str = "vgg19",
        weights: str = "imagenet",
        format: Format = "auto",
        pooling: Pooling = "avg",
        checkpointing: bool = False,
    ):
        if arch not in ARCHS:
            raise StyleLabError(f"model.arch must be one of {', '.join(ARCHS)}, not {arch!r}")
        formats.check_format(str(format))
        if pooling not in POOLINGS:
            raise StyleLabError(f"model.pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.arch = ARCHS[arch]
        self.weights, self.format, self.pooling = str(weights), str(format), str(pooling)
        self.checkpointing = bool(checkpointing)
        self._index = layer_table(self.arch)
        self.layers: tuple[str, ...] = tuple(self._index)  # in network order

    def __repr__(self) -> str:
        return f"VGG({self.arch.name}, weights={self.weights}, format={self.format}, pooling={self.pooling})"

    def check_layers(self, names, what: str = "layer") -> None:
        """A StyleLabError naming the valid choices if any name is not a layer of this network."""
        unknown = [n for n in names if n not in self._index]
        if unknown:
            elsewhere = [a.title for a in ARCHS.values() if a is not self.arch and unknown[0] in layer_table(a)]
            note = f" ({unknown[0]} is a layer of {elsewhere[0]}, not of {self.arch.title})" if elsewhere else ""
            raise StyleLabError(
                f"unknown {what} {', '.join(repr(n) for n in unknown)}; valid layers are {', '.join(self.layers)}{note}"
            )

    def min_input_side(self, layers) -> int:
        """The smallest image side whose response at the deepest of `layers` is at least 1 pixel."""
        return 2 ** sum(op == "pool" for op in self.path(self.deepest(layers)))

    def deepest(self, layers) -> str:
        self.check_layers(layers)
        return max(layers, key=self._index.__getitem__)

    def path(self, layer: str) -> list[str]:
        """How the image's grid reaches `layer`: "conv" (3 x 3, stride 1, padding 1) and "pool" (2 x 2, stride
        2) in network order, up to and including the layer."""
        self.check_layers([layer])
        return [name[:4] for name in self.layers[: self._index[layer] + 1] if name.startswith(("conv", "pool"))]

    def profile(self, layers) -> list[tuple[str, int, int]]:
        """(layer, channels, pools before it) up to the deepest of `layers`: what the memory estimate adds up."""
        deepest = self.layers.index(self.deepest(layers))
        out, pools = [], 0
        for name in self.layers[: deepest + 1]:
            block = int(name[4]) - 1  # conv3_2, relu3_2, pool3: block 3
            out.append((name, CHANNELS[block], pools + (1 if name.startswith("pool") else 0)))
            pools += name.startswith("pool")
        return out

    def propagate_guide(self, mask: torch.Tensor, layer: str, how: str = "simple") -> torch.Tensor:
        """A mask (1, 1, H, W) on the image's grid -> on `layer`'s grid (Gatys et al. 2017, sec. 4).

        simple: resized to the layer's grid (area average); inside: the units whose receptive field lies inside
        the region (eroded by each conv and pool); all: those whose receptive field touches it (dilated).
        """
        path = self.path(layer)
        if how == "simple":
            h, w = mask.shape[-2:]
            for op in path:
                if op == "pool":
                    h, w = h // 2, w // 2
            return F.adaptive_avg_pool2d(mask, (h, w)) if (h, w) != tuple(mask.shape[-2:]) else mask
        sign = 1.0 if how == "all" else -1.0  # erosion is a max-pool of the negated mask
        x = sign * mask
        for op in path:
            # padding is -inf for max_pool2d: positions outside the image neither grow nor shrink a region
            x = F.max_pool2d(x, 3, stride=1, padding=1) if op == "conv" else F.max_pool2d(x, 2, stride=2)
        return sign * x

    def weights_file(self) -> Path | None:
        """The file `weights` names, or where torchvision caches the ImageNet file; None for random."""
        if self.weights == "random":
            return None
        if self.weights == "imagenet":
            return imagenet_cache_file(self.arch)
        return Path(self.weights).expanduser()

    def load(self, *, seed: int = 0, progress: bool = True) -> Weights:
        """The weights and the input they expect (downloads torchvision's file on first use)."""
        return load_weights(self.arch, self.weights, format=self.format, seed=seed, progress=progress)

    def download(self, *, progress: bool = True) -> list[Download]:
        """torchvision's file fetched into its cache now, if it is the one used and is not there yet; what could
        not be downloaded (stylelab.errors.Download)."""
        return download_imagenet(self.arch, progress) if self.weights == "imagenet" else []

    def extractor(self, layers, weights: Weights, device: str | torch.device = "cpu") -> "VGGFeatures":
        """The extractor of `layers`: this network cut after the deepest of them, with `weights` (self.load())."""
        return VGGFeatures(
            layers,
            weights.state,
            arch=self.arch,
            pooling=self.pooling,
            convention=weights.convention,
            checkpointing=self.checkpointing,
        ).to(device)

    def features(
        self, layers, *, device: str | torch.device = "cpu", seed: int = 0, progress: bool = True
    ) -> "VGGFeatures":
        """extractor() with this model's own weights, loaded."""
        return self.extractor(layers, self.load(seed=seed, progress=progress), device)


# ---------------------------------------------------------------- the extractor


class Normalize(nn.Module):
    """RGB in [0, 1] -> the network's input convention, inside the model so callers never normalise."""

    def __init__(self, convention: InputConvention):
        super().__init__()
        self.bgr = convention.bgr
        self.register_buffer("mean", torch.tensor(convention.mean).view(1, 3, 1, 1))
        # fold scale into the divisor: (x * s - m) / d == (x - m / s) / (d / s)
        self.register_buffer("scale", torch.tensor(convention.scale))
        self.register_buffer("std", torch.tensor(convention.std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) RGB in [0, 1]
        if self.bgr:
            x = x.flip(1)
        return (x * self.scale - self.mean) / self.std


class VGGFeatures(nn.Module):
    """A VGG cut after the deepest requested layer, returning the responses of exactly those layers, by name.

    Input: RGB in [0, 1], (B, 3, H, W). Output: {layer name: (B, C, h, w)}.
    A convX_Y layer gives the pre-ReLU response, reluX_Y the rectified one. Weights are frozen (eval mode).
    """

    def __init__(
        self,
        layers,
        state: dict[str, torch.Tensor],
        *,
        arch: Arch | str = "vgg19",
        pooling: str = "avg",
        convention: InputConvention = TORCHVISION,
        checkpointing: bool = False,
    ):
        super().__init__()
        arch = arch_of(arch)
        model = VGG(arch.name, pooling=pooling)  # the layer names and their checks
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise StyleLabError(f"no layers requested from the {arch.title}")
        model.check_layers(layers)
        self.arch, self.layers = arch, layers
        self.normalize = Normalize(convention)

        full = skeleton(arch)
        # float32 modules whatever the file's dtype; assign: the skeleton's parameters hold no values to copy into
        full.load_state_dict({key: value.float() for key, value in state.items()}, assign=True)
        index = layer_table(arch)
        hooked_convs = {index[n] for n in layers if n.startswith("conv")}
        modules = OrderedDict()
        for name in model.layers[: model.layers.index(model.deepest(layers)) + 1]:  # cut after the deepest
            module = full[index[name]]
            if isinstance(module, nn.ReLU):
                # an in-place ReLU would overwrite a hooked conv response with its rectified values
                module = nn.ReLU(inplace=index[name] - 1 not in hooked_convs)
            elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            modules[name] = module
        self.net = nn.Sequential(modules)
        self.requires_grad_(False)
        self.eval()
        # activation checkpointing: the net in pieces that end at the requested layers; a piece keeps only its
        # output for the backward pass and recomputes what is inside it (less memory, one more forward)
        self.checkpointing = bool(checkpointing)
        self._pieces, piece = [], []
        for name in modules:
            piece.append(name)
            if name in layers:
                self._pieces.append(nn.Sequential(OrderedDict((n, self.net.get_submodule(n)) for n in piece)))
                piece = []

        self._captured: dict[str, torch.Tensor] = {}
        for name in layers:
            self.net.get_submodule(name).register_forward_hook(self._capture(name))

    def _capture(self, name: str):
        def hook(module, inputs, output):
            self._captured[name] = output

        return hook

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always eval

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        self._captured = {}
        x = self.normalize(image)
        if self.checkpointing and torch.is_grad_enabled():
            for piece in self._pieces:  # (the hooks capture each piece's output, as without pieces)
                x = torch.utils.checkpoint.checkpoint(piece, x, use_reentrant=False)
        else:
            self.net(x)
        captured, self._captured = self._captured, {}
        return {name: captured[name] for name in self.layers}


def build_extractor(
    layers,
    *,
    model: str = "vgg19",
    weights: str = "imagenet",
    format: str = "auto",
    pooling: str = "avg",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    checkpointing: bool = False,
) -> VGGFeatures:
    """The usual way in from Python: the `model` network with `weights` (imagenet | random | path), cut after the
    deepest of `layers`. The input convention follows the weights' format, so callers always pass RGB in [0, 1]."""
    return VGG(model, weights, format, pooling, checkpointing).features(
        layers, device=device, seed=seed, progress=progress
    )

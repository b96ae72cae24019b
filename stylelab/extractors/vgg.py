"""VGG19 as a named-layer feature extractor.

The layer table below is the only place in stylelab that knows torchvision's module indices; everything
else addresses layers by name (conv4_2, relu4_2, pool1, ...).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.utils.checkpoint
import torchvision
from torchvision.models import VGG19_Weights

from stylelab.errors import StyleLabError
from stylelab.extractors import weights as formats
from stylelab.extractors.weights import IMAGENET_MEAN, IMAGENET_STD, TORCHVISION, InputConvention  # noqa: F401 (re-exported)

# Layer name -> index in torchvision's vgg19().features. Built from the block structure
# (convs per block 2, 2, 4, 4, 4; a pool after each block) so the table cannot drift from the network.
_BLOCK_CONVS = (2, 2, 4, 4, 4)


def _layer_table() -> dict[str, int]:
    table: dict[str, int] = {}
    index = 0
    for block, convs in enumerate(_BLOCK_CONVS, start=1):
        for k in range(1, convs + 1):
            table[f"conv{block}_{k}"] = index
            table[f"relu{block}_{k}"] = index + 1
            index += 2
        table[f"pool{block}"] = index
        index += 1
    return table


LAYERS: dict[str, int] = _layer_table()
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)  # in network order


def check_layers(names, what: str = "layer") -> None:
    """Raise a StyleLabError naming the valid choices if any name is not a VGG19 layer."""
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise StyleLabError(
            f"unknown {what} {', '.join(repr(n) for n in unknown)}; valid layers are {', '.join(LAYER_NAMES)}"
        )


def spatial_path(layer: str) -> list[str]:
    """How the image's grid reaches `layer`: "conv" (3 x 3, stride 1, padding 1) and "pool" (2 x 2, stride 2)
    in network order, up to and including the layer."""
    check_layers([layer])
    return [name[:4] for name in LAYER_NAMES[: LAYERS[layer] + 1] if name.startswith(("conv", "pool"))]


def min_input_side(layers) -> int:
    """Smallest image side whose feature map at the deepest of `layers` is at least 1 pixel."""
    deepest = max(LAYERS[n] for n in layers)
    pools = sum(1 for name, i in LAYERS.items() if name.startswith("pool") and i <= deepest)
    return 2**pools


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


def _features_skeleton() -> nn.Sequential:
    """torchvision's vgg19().features without the (large, unused) classifier."""
    return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"], batch_norm=False)


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random VGG19 features in torchvision's layout and init (for tests and smoke runs only)."""
    return OrderedDict(_random_state_dict(seed))  # a new dict each time; its tensors are never written to


@functools.lru_cache(maxsize=2)
def _random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    features = _features_skeleton()
    state = OrderedDict()
    for i, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            # torchvision's init for VGG convs: kaiming normal, fan_out, relu gain; zero bias
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            std = (2.0 / fan_out) ** 0.5
            state[f"features.{i}.weight"] = torch.randn(module.weight.shape, generator=gen) * std
            state[f"features.{i}.bias"] = torch.zeros(module.out_channels)
    return state


def imagenet_cache_file() -> Path:
    """Where torchvision's loader caches the ImageNet VGG19 file ($TORCH_HOME/hub/checkpoints/...)."""
    filename = os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _imagenet_state_dict(progress: bool) -> dict[str, torch.Tensor]:
    target = imagenet_cache_file()
    try:
        # torchvision's own loader: downloads into the cache with a hash check, or reads the cached file
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=progress)
    except (OSError, RuntimeError, ValueError) as exc:
        if target.exists():
            raise StyleLabError(f"the cached VGG19 weights {target} cannot be read ({exc}); delete it to re-download") from None
        raise StyleLabError(
            f"could not download the ImageNet VGG19 weights from {VGG19_Weights.IMAGENET1K_V1.url} "
            f"({type(exc).__name__}); put the file {target.name} into {target.parent} "
            f"(or set TORCH_HOME), or use model.weights=<path to a .pth>"
        ) from None


def _file_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """A .pth file's tensors, and the input-convention marker stylelab-normalize leaves in its files."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same to the user
        raise StyleLabError(f"cannot read weights file {path} as a PyTorch state dict ({type(exc).__name__})") from None
    marker = state.pop(formats.MARKER, None) if isinstance(state, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StyleLabError(f"weights file {path} does not hold a state dict of tensors")
    return state, marker


def _matconvnet_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], InputConvention]:
    """A MatConvNet .mat in torchvision's layout: its k-th conv layer becomes VGG19's k-th conv."""
    convs = [LAYERS[name] for name in LAYER_NAMES if name.startswith("conv")]
    params, convention = formats.read_matconvnet(path, len(convs))
    state = {}
    for index, (weight, bias) in zip(convs, params):
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = weight, bias
    return state, convention


def features_state_dict(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Check a torchvision-layout VGG19 state dict (full model or features.* only); return its features.

    Keys are returned relative to `features` ("0.weight", ...).
    """
    expected = {f"{i}.{p}": shape for i, shape in _conv_shapes().items() for p, shape in shape.items()}
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
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
    if problems:
        raise StyleLabError(f"{source} is not a torchvision VGG19 state dict: {'; '.join(problems)}")
    return {k: v.float() for k, v in features.items()}


def _key_order(key: str) -> tuple[int, str]:
    index, _, rest = key.partition(".")
    return (int(index), rest) if index.isdigit() else (-1, key)


def _conv_shapes() -> dict[int, dict[str, tuple[int, ...]]]:
    return {
        i: {"weight": tuple(m.weight.shape), "bias": tuple(m.bias.shape)}
        for i, m in enumerate(_features_skeleton())
        if isinstance(m, nn.Conv2d)
    }


@dataclass(frozen=True)
class Weights:
    """VGG19 features ("0.weight", ...) and the input they expect; `format` says which kind of file they came from."""

    state: dict[str, torch.Tensor]
    convention: InputConvention
    format: str  # torchvision | caffe | matconvnet


def load_weights(weights: str, *, format: str = "auto", seed: int = 0, progress: bool = True) -> Weights:
    """`imagenet`, `random` or a weights file (.pth in torchvision's layout, .mat) -> Weights.

    `format` (auto | torchvision | caffe | matconvnet) says how a file wants its input; auto decides from the
    file itself and refuses to guess (see formats.pth_convention).
    """
    formats.check_format(format)
    if weights in ("imagenet", "random"):
        if format not in ("auto", "torchvision"):
            raise StyleLabError(
                f"model.weights={weights} is torchvision's VGG19, so model.format must be auto or torchvision, "
                f"not {format}"
            )
        if weights == "imagenet":
            state = features_state_dict(_imagenet_state_dict(progress), "torchvision's ImageNet VGG19")
            return Weights(state, TORCHVISION, "torchvision")
        warnings.warn(
            "model.weights=random: the VGG19 has random weights, so the output is NOT meaningful art "
            "(use it for tests and smoke runs only)",
            stacklevel=2,
        )
        return Weights(features_state_dict(random_state_dict(seed), "random weights"), TORCHVISION, "torchvision")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise StyleLabError(
            f"weights file {path} does not exist; model.weights takes imagenet, random, a .pth or a .mat path"
        )
    if formats.is_matconvnet(path, format):
        state, convention = _matconvnet_state_dict(path)
        return Weights(features_state_dict(state, str(path)), convention, "matconvnet")
    state, marker = _file_state_dict(path)
    features = features_state_dict(state, str(path))  # a wrong file is named before its format is asked for
    convention, origin = formats.pth_convention(path, format, marker)
    return Weights(features, convention, origin)


class VGGFeatures(nn.Module):
    """Truncated VGG19 returning the responses of exactly the requested layers, by name.

    Input: RGB in [0, 1], (B, 3, H, W). Output: {layer name: (B, C, h, w)}.
    A convX_Y layer gives the pre-ReLU response, reluX_Y the rectified one. Weights are frozen (eval mode).
    """

    def __init__(
        self,
        layers,
        state: dict[str, torch.Tensor],
        *,
        pooling: str = "avg",
        convention: InputConvention = TORCHVISION,
        checkpointing: bool = False,
    ):
        super().__init__()
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise StyleLabError("no layers requested from the VGG19")
        check_layers(layers)
        if pooling not in ("max", "avg"):
            raise StyleLabError(f"model.pooling must be max or avg, not {pooling!r}")
        self.layers = layers
        self.normalize = Normalize(convention)

        full = _features_skeleton()
        full.load_state_dict(state)
        deepest = max(LAYERS[n] for n in layers)
        hooked_convs = {LAYERS[n] for n in layers if n.startswith("conv")}
        modules = OrderedDict()
        for name in LAYER_NAMES[: deepest + 1]:  # cut after the deepest requested layer
            module = full[LAYERS[name]]
            if isinstance(module, nn.ReLU):
                # an in-place ReLU would overwrite a hooked conv response with its rectified values
                module = nn.ReLU(inplace=LAYERS[name] - 1 not in hooked_convs)
            elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            modules[name] = module
        self.net = nn.Sequential(modules)
        self.requires_grad_(False)
        self.eval()
        # activation checkpointing: the net in pieces that end at the requested layers; a piece keeps only its
        # output for the backward pass and recomputes what is inside it (less memory, one more forward)
        self.checkpointing = bool(checkpointing)
        names, self._pieces, piece = list(modules), [], []
        for name in names:
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
    weights: str = "imagenet",
    format: str = "auto",
    pooling: str = "avg",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    checkpointing: bool = False,
) -> VGGFeatures:
    """The usual way in: load `weights` (imagenet | random | path) and cut VGG19 after the deepest layer.

    The input convention follows the weights' format, so callers always pass RGB in [0, 1].
    checkpointing: recompute activations in the backward pass instead of keeping them (memory for time).
    """
    check_layers(layers)
    loaded = load_weights(weights, format=format, seed=seed, progress=progress)
    return VGGFeatures(layers, loaded.state, pooling=pooling, convention=loaded.convention,
                       checkpointing=checkpointing).to(device)

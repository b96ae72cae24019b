"""The Python API: style transfer in one call, no Hydra needed. The CLI is built on `transfer`.

    >>> import stylelab
    >>> picture = stylelab.stylize("photo.jpg", "starry_night", size=256, steps=200)   # a PIL image
    >>> picture.save("out.png")
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image

from stylelab import images
from stylelab.errors import StyleLabError
from stylelab.losses import StyleTransferLoss
from stylelab.trainer import OptimizerSpec, RunResult, initial_image, optimize
from stylelab.vgg import build_extractor, check_layers, min_input_side

PAPER_CONTENT_LAYERS = {"relu4_2": 1.0}
PAPER_STYLE_LAYERS = {name: 0.2 for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}
# Defaults for torchvision's ImageNet VGG19: the PyTorch tutorial's weights converted into the paper's
# units at the default size; the arithmetic is in the README ("What alpha and beta mean").
IMAGENET_ALPHA = 1.0
IMAGENET_BETA = 1.032e9
MAX_SIZE = 8192  # longest side; beyond this the VGG activations alone outgrow any single GPU


@dataclass
class Settings:
    """Everything one style-transfer run depends on (the CLI fills it from the Hydra config)."""

    size: int = 512
    content_layers: dict[str, float] = field(default_factory=lambda: dict(PAPER_CONTENT_LAYERS))
    style_layers: dict[str, float] = field(default_factory=lambda: dict(PAPER_STYLE_LAYERS))
    alpha: float = IMAGENET_ALPHA
    beta: float = IMAGENET_BETA
    tv_weight: float = 0.0
    init: str = "noise"  # noise | content | style | image
    init_path: str | None = None
    steps: int = 500
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    weights: str = "imagenet"  # imagenet | random | path to a .pth or .mat
    weights_format: str = "auto"  # auto | torchvision | caffe | matconvnet: the input the weights expect
    pooling: str = "avg"  # avg (the paper) | max
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    # speed only: results equal the plain float32 ones up to rounding
    channels_last: bool = True  # NHWC activations: faster convolutions on CPU (oneDNN) and CUDA
    compile: bool = False  # torch.compile the feature extractor (pays a compile time at the start)
    tf32: bool = True  # CUDA: TF32 convolutions (Gram matmuls always stay full float32)

    def validate(self) -> None:
        check_layers(self.content_layers, "content layer")
        check_layers(self.style_layers, "style layer")
        if not self.content_layers and not self.style_layers:
            raise StyleLabError("no content and no style layers: there is nothing to optimise")
        for what, weights in (("content", self.content_layers), ("style", self.style_layers)):
            for name, w in weights.items():
                if not isinstance(w, (int, float)) or w < 0 or w != w:
                    raise StyleLabError(f"the {what} weight of {name} must be a number >= 0, not {w!r}")
        for name in ("alpha", "beta", "tv_weight"):
            value = getattr(self, name)
            if value < 0 or value != value:
                raise StyleLabError(f"loss.{name} must be >= 0, not {value}")
        if self.steps < 0:
            raise StyleLabError(f"steps must be >= 0, not {self.steps}")
        smallest = min_input_side([*self.content_layers, *self.style_layers])
        if not smallest <= self.size <= MAX_SIZE:
            raise StyleLabError(
                f"image.size must be between {smallest} (for the layers chosen) and {MAX_SIZE} pixels, not {self.size}"
            )
        if self.optimizer.lr <= 0:
            raise StyleLabError(f"optimizer.lr must be > 0, not {self.optimizer.lr}")
        if self.optimizer.history_size < 1:
            raise StyleLabError(f"optimizer.history_size must be >= 1, not {self.optimizer.history_size}")
        if self.init == "image" and not self.init_path:
            raise StyleLabError("init=image needs init.path=<an image file>")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise StyleLabError("device=cuda but PyTorch sees no CUDA GPU here; use device=cpu or device=auto")
    if device not in ("cpu", "cuda"):
        raise StyleLabError(f"device must be auto, cpu or cuda, not {device!r}")
    return torch.device(device)


def _as_tensor(picture) -> torch.Tensor:
    """A path, sample name, PIL image or (3, H, W) / (1, 3, H, W) tensor in [0, 1] -> (3, H, W)."""
    if isinstance(picture, torch.Tensor):
        return picture.detach().float().reshape(3, *picture.shape[-2:])
    if isinstance(picture, Image.Image):
        return images.pil_to_tensor(picture)
    return images.load_image(images.resolve_image(str(picture)))


@dataclass
class Prepared:
    """The inputs of a run, on the device: images (1, 3, H, W) and the built network and loss."""

    content: torch.Tensor
    style: torch.Tensor
    init: torch.Tensor
    extractor: torch.nn.Module
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]]  # the extractor as the loop calls it
    loss: StyleTransferLoss
    device: torch.device


def prepare(content, style, settings: Settings, *, progress: bool = True) -> Prepared:
    """Validate, read the images, build the truncated VGG and compute the targets once."""
    settings.validate()
    device = resolve_device(settings.device)
    _configure_backend(device, settings)
    torch.manual_seed(settings.seed)
    content_img = images.resize_longest(_as_tensor(content), settings.size)  # (3, H, W)
    h, w = content_img.shape[-2:]
    smallest = min_input_side([*settings.content_layers, *settings.style_layers])
    if min(h, w) < smallest:
        raise StyleLabError(
            f"the content image becomes {w}x{h} at image.size={settings.size}; the layers chosen need "
            f"both sides >= {smallest} pixels"
        )
    # the paper compares Grams over the same number of positions M, so the style takes the content's size
    style_img = images.resize_to(_as_tensor(style), (h, w))
    init_img = None
    if settings.init == "image":
        init_img = images.resize_to(_as_tensor(settings.init_path), (h, w))[None].to(device)
    content_img, style_img = content_img[None].to(device), style_img[None].to(device)

    layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
    extractor = build_extractor(
        layers,
        weights=settings.weights,
        format=settings.weights_format,
        pooling=settings.pooling,
        seed=settings.seed,
        device=device,
        progress=progress,
    )
    with torch.no_grad():
        loss = StyleTransferLoss(
            extractor(content_img),
            extractor(style_img),
            settings.content_layers,
            settings.style_layers,
            settings.alpha,
            settings.beta,
            settings.tv_weight,
        ).to(device)
    start = initial_image(settings.init, content_img, style_img, seed=settings.seed, image=init_img)
    if settings.channels_last:
        # weights in NHWC make every activation NHWC; the image itself stays NCHW for the optimizers
        extractor = extractor.to(memory_format=torch.channels_last)
    return Prepared(content_img, style_img, start, extractor, _fast_features(extractor, settings, device), loss, device)


def _configure_backend(device: torch.device, settings: Settings) -> None:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one input size for the whole run: autotune once
        torch.backends.cudnn.allow_tf32 = settings.tf32
        torch.backends.cuda.matmul.allow_tf32 = False  # Grams in full float32: they are the paper's numbers


def _fast_features(extractor: torch.nn.Module, settings: Settings, device: torch.device):
    """The extractor as the optimisation loop calls it, compiled if asked.

    (bf16 autocast was tried and dropped: its loss curve left float32's by up to 23% over 200 steps at 256 px.)
    """
    return torch.compile(extractor) if settings.compile else extractor


def transfer(content, style, settings: Settings | None = None, *, callbacks=(), progress: bool = True) -> RunResult:
    """Run one style transfer; returns the RunResult (image tensor, losses, timing, why it stopped)."""
    settings = settings or Settings()
    prepared = prepare(content, style, settings, progress=progress)
    return optimize(
        prepared.init,
        prepared.features,
        prepared.loss,
        steps=settings.steps,
        optimizer=settings.optimizer,
        callbacks=callbacks,
    )


def stylize(content, style, **settings) -> Image.Image:
    """`content` in the style of `style` (paths, sample names, PIL images or tensors); returns a PIL image.

    Keyword arguments are the fields of `Settings` (size, steps, alpha, beta, style_layers, weights, ...).
    """
    optimizer = settings.pop("optimizer", None)
    if isinstance(optimizer, str):
        settings["optimizer"] = OptimizerSpec(name=optimizer, lr=settings.pop("lr", 1.0))
    elif optimizer is not None:
        settings["optimizer"] = optimizer
    result = transfer(content, style, Settings(**settings), progress=False)
    if result.stopped:
        warnings.warn(result.stopped, stacklevel=2)
    return images.to_pil(result.image)

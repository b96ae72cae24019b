"""config -> the objects of one run: images, feature extractor, objective, initial image, optimizer.

The one place that calls hydra.utils.instantiate. The CLI and the Python API both come through here,
so the same config builds the same run. Everything is read and checked before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from stylelab import backend
from stylelab.errors import StyleLabError
from stylelab.extractors.vgg import check_layers, min_input_side
from stylelab.io import images, samples
from stylelab.losses.base import Objective

MAX_SIZE = 8192  # longest side; beyond this the VGG activations alone outgrow any single GPU


@dataclass
class Built:
    """One run's inputs and parts, on its device. Images are (1, 3, H, W) RGB in [0, 1]."""

    device: torch.device
    content: torch.Tensor
    style: torch.Tensor
    init: torch.Tensor
    extractor: torch.nn.Module  # the VGG itself (channels_last applied)
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]]  # the extractor as the loop calls it
    objective: Objective
    optimizer: Callable  # params -> torch optimizer (stylelab.optim)


def make(node: DictConfig, **runtime: Any):
    """instantiate(node, **runtime), with a user mistake inside the target kept as the one sentence it is."""
    try:
        return instantiate(node, **runtime)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, StyleLabError):
            raise cause from None
        if isinstance(cause, TypeError):  # e.g. an option's YAML names a parameter its class does not take
            raise StyleLabError(f"cannot build {node.get('_target_')}: {cause}") from None
        raise


def layer_weights(layers, weights, what: str) -> dict[str, float]:
    """loss.<what>_layers and loss.<what>_weights -> {layer: w_l}; weights left out are equal and sum to 1."""
    layers = list(layers)
    if len(set(layers)) != len(layers):
        raise StyleLabError(f"loss.{what}_layers lists a layer twice: {layers}")
    check_layers(layers, f"{what} layer")
    if weights is None:
        return {name: 1.0 / len(layers) for name in layers}
    if len(weights) != len(layers):
        raise StyleLabError(f"loss.{what}_weights has {len(weights)} values but loss.{what}_layers has {len(layers)} layers")
    for name, w in zip(layers, weights):
        if not w >= 0:
            raise StyleLabError(f"the {what} weight of {name} must be a number >= 0, not {w!r}")
    return dict(zip(layers, (float(w) for w in weights)))


def objective(cfg: DictConfig) -> Objective:
    """The weighted terms: alpha * content + beta * style + tv_weight * tv, each term from its config group."""
    loss = cfg.loss
    content_layers = layer_weights(loss.content_layers, loss.content_weights, "content")
    style_layers = layer_weights(loss.style_layers, loss.style_weights, "style")
    if not content_layers and not style_layers:
        raise StyleLabError("no content and no style layers: there is nothing to optimise")
    for name in ("alpha", "beta", "tv_weight"):
        if not loss[name] >= 0:
            raise StyleLabError(f"loss.{name} must be >= 0, not {loss[name]}")
    terms = {
        "content": make(loss.content, layers=content_layers),
        "style": make(loss.style, layers=style_layers),
        "tv": make(loss.tv),
    }
    return Objective(terms, {"content": loss.alpha, "style": loss.beta, "tv": loss.tv_weight})


def _picture(spec, given: dict, key: str) -> torch.Tensor:
    """(3, H, W) from an in-memory picture the API was handed, else from the config's path or sample name."""
    if key in given:
        return given[key]
    return images.load_image(samples.resolve_image(str(spec)))


def build(cfg: DictConfig, *, pictures: dict[str, torch.Tensor] | None = None, progress: bool = True) -> Built:
    """Validate, read the images, build the truncated VGG and the objective, compute the targets once.

    pictures: {"content" | "style": (3, H, W) tensor} used instead of reading cfg.content / cfg.style.
    """
    pictures = pictures or {}
    if cfg.steps < 0:
        raise StyleLabError(f"steps must be >= 0, not {cfg.steps}")
    if cfg.checkpoint_every < 0:
        raise StyleLabError(f"checkpoint_every must be >= 0, not {cfg.checkpoint_every}")
    goal = objective(cfg)
    smallest = min_input_side(goal.layers)
    if not smallest <= cfg.image.size <= MAX_SIZE:
        raise StyleLabError(
            f"image.size must be between {smallest} (for the layers chosen) and {MAX_SIZE} pixels, not {cfg.image.size}"
        )
    optimizer = make(cfg.optimizer)
    device = backend.resolve_device(str(cfg.device))
    backend.configure(device, tf32=cfg.tf32)
    torch.manual_seed(cfg.seed)

    content = images.resize_longest(_picture(cfg.content, pictures, "content"), cfg.image.size)  # (3, H, W)
    h, w = content.shape[-2:]
    if min(h, w) < smallest:
        raise StyleLabError(
            f"the content image becomes {w}x{h} at image.size={cfg.image.size}; the layers chosen need "
            f"both sides >= {smallest} pixels"
        )
    # the paper compares Grams over the same number of positions M, so the style takes the content's size
    style = images.resize_to(_picture(cfg.style, pictures, "style"), (h, w))
    content, style = content[None].to(device), style[None].to(device)
    init = make(cfg.init)(content, style, seed=cfg.seed)

    extractor = make(cfg.model, layers=goal.layers, seed=cfg.seed, device=device, progress=progress)
    with torch.no_grad():
        goal.terms["content"].set_target(extractor(content))
        goal.terms["style"].set_target(extractor(style))
    if cfg.channels_last:
        # weights in NHWC make every activation NHWC; the image itself stays NCHW for the optimizers
        extractor = extractor.to(memory_format=torch.channels_last)
    # (bf16 autocast was tried and dropped: its loss curve left float32's by up to 23% over 200 steps at 256 px)
    features = torch.compile(extractor) if cfg.compile else extractor
    return Built(device, content, style, init, extractor, features, goal, optimizer)

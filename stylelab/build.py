"""config -> the objects of one run: images, feature extractor, objective, optimizer, and its levels.

The one place that calls hydra.utils.instantiate. The CLI and the Python API both come through here,
so the same config builds the same run. Everything is read and checked before anything is written.

A run has one level (image.size, steps) or, coarse to fine, several (schedule.sizes, schedule.steps);
`Built.level` makes the images and targets of one level: content, style and masks at its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from stylelab import backend, config
from stylelab.controls import masks as masking
from stylelab.errors import StyleLabError
from stylelab.extractors.vgg import check_layers, min_input_side
from stylelab.io import images, samples
from stylelab.losses.base import Objective

MAX_SIZE = 8192  # longest side; beyond this the VGG activations alone outgrow any single GPU


@dataclass(frozen=True)
class Level:
    """One level of a run: its longest side, and the global steps it runs from and to."""

    size: int
    first: int
    last: int


@dataclass
class LevelImages:
    """A level's images on the device, (1, 3, h, w): what the optimisation sees, and where it starts."""

    content: torch.Tensor
    styles: list[torch.Tensor]  # as used: recoloured, at style_scale
    init: torch.Tensor


@dataclass
class Built:
    """One run's parts, on its device, and its inputs at full size (the levels resize them)."""

    device: torch.device
    extractor: torch.nn.Module  # the VGG itself (channels_last applied)
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]]  # the extractor as the loop calls it
    objective: Objective
    optimizer: Callable  # params -> torch optimizer (stylelab.optim)
    colour: Any  # stylelab.controls.colour: prepare() was applied to the inputs below, finish() is for the result
    levels: list[Level]
    first: LevelImages  # the first level's images, made by build()
    original: torch.Tensor  # (3, H, W) the content as read; colour.finish takes its chroma
    content: torch.Tensor  # (3, H, W) the content as the optimisation sees it
    styles: list[torch.Tensor]  # (3, H, W) each, as the optimisation sees them
    weights: list[float]  # style_blend, normalised
    content_masks: list[torch.Tensor] | None  # (1, 1, H, W) per region
    style_masks: list[torch.Tensor | None] | None  # per region, on its style image
    style_scale: float
    propagation: str
    soft: bool
    make_init: Callable  # (content, style, seed=) -> the initial image
    seed: int

    def size_of(self, size: int) -> tuple[int, int]:
        """(h, w) of the content at a level's longest side (as images.resize_longest makes it)."""
        height, width = self.content.shape[-2:]
        scale = size / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    def level(self, size: int, previous: torch.Tensor | None = None) -> LevelImages:
        """The images of a level of `size` px, with every target set at that size. The level starts from
        `previous` (the last level's result) resized, or else from the run's init."""
        content = images.resize_longest(self.content, size)  # (3, h, w)
        h, w = content.shape[-2:]
        smallest = min_input_side(self.objective.layers)
        if min(h, w) < smallest:
            raise StyleLabError(f"the content image becomes {w}x{h} at {size} px; the layers chosen need both "
                                f"sides >= {smallest} pixels")
        # the paper compares Grams over the same number of positions, so by default the style takes the
        # content's exact size; style_scale shrinks or grows it (its Gram is then rescaled to M, see GramLoss)
        hw = (h, w) if self.style_scale == 1 else (max(1, round(h * self.style_scale)), max(1, round(w * self.style_scale)))
        if min(hw) < smallest:
            raise StyleLabError(f"at style_scale={self.style_scale} the style becomes {hw[1]}x{hw[0]}; the layers "
                                f"chosen need both sides >= {smallest} pixels")
        styles = [images.resize_to(style, hw)[None].to(self.device) for style in self.styles]
        content = content[None].to(self.device)
        style_term, layers = self.objective.terms["style"], list(self.objective.terms["style"].layers)
        with torch.no_grad():
            self.objective.terms["content"].set_target(self.extractor(content))
            responses = [self.extractor(style) for style in styles]
            if self.content_masks is None:
                style_term.set_targets(responses, self.weights)
            else:
                guides = [masking.guides(masking.resize_mask(m, (h, w), soft=self.soft).to(self.device), layers,
                                         self.propagation) for m in self.content_masks]
                within = None
                if self.style_masks is not None:
                    within = [masking.guides(masking.resize_mask(m, hw, soft=self.soft).to(self.device), layers,
                                             self.propagation) for m in self.style_masks]
                style_term.set_targets(responses, guides=guides, style_guides=within)
        if previous is None:
            init = self.make_init(content, styles[0], seed=self.seed)
        else:
            init = images.resize_to(previous[0].detach().cpu(), (h, w))[None].to(self.device)
        return LevelImages(content, styles, init)


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


def levels(cfg: DictConfig) -> list[Level]:
    """image.size for `steps`, or coarse to fine: schedule.sizes with schedule.steps each."""
    sizes, steps = cfg.schedule.sizes, cfg.schedule.steps
    if sizes is None and steps is None:
        sizes, steps = [cfg.image.size], [cfg.steps]
    elif sizes is None or steps is None or len(sizes) != len(steps) or not sizes:
        raise StyleLabError(f"schedule.sizes and schedule.steps must be two lists of the same length, not "
                            f"{config.plain(sizes)} and {config.plain(steps)}")
    out, first = [], 0
    for size, n in zip(sizes, steps):
        if n < 0:
            raise StyleLabError(f"steps must be >= 0, not {n}")
        out.append(Level(int(size), first, first + int(n)))
        first += int(n)
    return out


def _specs(value, what: str) -> list[str]:
    """A path or a list of paths -> a list."""
    value = config.plain(value)
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise StyleLabError(f"{what} must be an image or a list of images, not {value!r}")
    return items


def _pictures(specs: list[str], given, what: str) -> list[torch.Tensor]:
    """(3, H, W) each, from in-memory pictures the API was handed, else read from the paths or sample names."""
    if given is not None:
        return list(given) if isinstance(given, (list, tuple)) else [given]
    return [images.load_image(samples.resolve_image(spec)) for spec in specs]


def _masks(specs, soft: bool, what: str) -> list[torch.Tensor]:
    out = []
    for spec in _specs(specs, what):
        try:
            out.append(masking.read_mask(spec, soft=soft))
        except StyleLabError as exc:
            raise StyleLabError(f"{what}: {exc}") from None
    return out


def _same_shape(masks: list[torch.Tensor], pictures: list[torch.Tensor], specs: list[str], what: str) -> None:
    """A mask is resized to its image, so it must have the image's proportions (to 1%)."""
    for mask, picture, spec in zip(masks, pictures, specs):
        (mh, mw), (ph, pw) = mask.shape[-2:], picture.shape[-2:]
        if abs(mw / mh - pw / ph) > 0.01 * (pw / ph):
            raise StyleLabError(f"mask {spec} is {mw}x{mh} but {what} is {pw}x{ph}: a mask must have the "
                                f"proportions of the image it masks")


def build(cfg: DictConfig, *, pictures: dict | None = None, progress: bool = True) -> Built:
    """Validate, read the images, build the truncated VGG and the objective, and the first level's targets.

    pictures: {"content": (3, H, W), "style": (3, H, W) or a list of them} used instead of reading the
    config's paths (the Python API's in-memory images).
    """
    pictures = pictures or {}
    if cfg.steps < 0:
        raise StyleLabError(f"steps must be >= 0, not {cfg.steps}")
    if cfg.checkpoint_every < 0:
        raise StyleLabError(f"checkpoint_every must be >= 0, not {cfg.checkpoint_every}")
    if not cfg.style_scale > 0:
        raise StyleLabError(f"style_scale must be > 0, not {cfg.style_scale}")
    goal = objective(cfg)
    runs = levels(cfg)
    smallest = min_input_side(goal.layers)
    for level in runs:
        if not smallest <= level.size <= MAX_SIZE:
            what = "image.size" if cfg.schedule.sizes is None else "every size of schedule.sizes"
            raise StyleLabError(f"{what} must be between {smallest} (for the layers chosen) and {MAX_SIZE} pixels, "
                                f"not {level.size}")
    optimizer = make(cfg.optimizer)
    colour = make(cfg.colour)
    style_term = goal.terms["style"]

    style_specs = _specs(cfg.style, "style")
    if cfg.style_blend is not None and len(cfg.style_blend) != len(style_specs):
        raise StyleLabError(f"style_blend has {len(cfg.style_blend)} weights for {len(style_specs)} styles")
    weights = [1.0] * len(style_specs) if cfg.style_blend is None else [float(w) for w in cfg.style_blend]
    if not all(w >= 0 for w in weights) or sum(weights) <= 0:
        raise StyleLabError(f"style_blend must be weights >= 0 with a positive sum, not {weights}")
    weights = [w / sum(weights) for w in weights]
    content_masks = style_masks = None
    if cfg.mask.content is not None:
        regions = len(_specs(cfg.mask.content, "mask.content"))
        if len(style_specs) not in (1, regions):
            raise StyleLabError(f"mask.content has {regions} masks but style has {len(style_specs)} images: give one "
                                f"style per region, or one style for all")
        if cfg.style_blend is not None:
            raise StyleLabError("style_blend mixes styles over the whole image; with mask.content each region has "
                                "its own style, so leave style_blend out")
        if not getattr(style_term, "guides", False):
            raise StyleLabError(f"mask.content needs a style loss with spatial control; {type(style_term).__name__} "
                                f"has none (loss/style=gram has)")
        if cfg.mask.style is not None and len(_specs(cfg.mask.style, "mask.style")) != regions:
            raise StyleLabError(f"mask.style has {len(_specs(cfg.mask.style, 'mask.style'))} masks but mask.content "
                                f"has {regions}: give one per region")
    elif cfg.mask.style is not None:
        raise StyleLabError("mask.style picks a part of each region's style image; it needs mask.content")
    elif len(style_specs) > 1 and not getattr(style_term, "blends", False):
        raise StyleLabError(f"{type(style_term).__name__} cannot blend several styles; give one style, or choose "
                            f"loss/style=gram, mean_std or w2")

    device = backend.resolve_device(str(cfg.device))
    backend.configure(device, tf32=cfg.tf32)
    torch.manual_seed(cfg.seed)
    original = _pictures([cfg.content], pictures.get("content"), "content")[0]  # (3, H, W)
    styles = _pictures(style_specs, pictures.get("style"), "style")
    if cfg.mask.content is not None:
        content_masks = _masks(cfg.mask.content, cfg.mask.soft, "mask.content")
        _same_shape(content_masks, [original] * len(content_masks), _specs(cfg.mask.content, ""), "the content")
        if cfg.mask.style is not None:
            style_masks = _masks(cfg.mask.style, cfg.mask.soft, "mask.style")
            regions = [styles[r if len(styles) > 1 else 0] for r in range(len(style_masks))]
            _same_shape(style_masks, regions, _specs(cfg.mask.style, ""), "its style image")
    content, styles = colour.prepare(original, styles)

    extractor = make(cfg.model, layers=goal.layers, seed=cfg.seed, device=device, progress=progress)
    built = Built(device, extractor, extractor, goal, optimizer, colour, runs, None, original, content, styles,
                  weights, content_masks, style_masks, float(cfg.style_scale), str(cfg.mask.propagation),
                  bool(cfg.mask.soft), make(cfg.init), int(cfg.seed))
    built.first = built.level(runs[0].size)  # before channels_last: the paper's targets as they always were
    if cfg.channels_last:
        # weights in NHWC make every activation NHWC; the image itself stays NCHW for the optimizers
        built.extractor = extractor.to(memory_format=torch.channels_last)
    # (bf16 autocast was tried and dropped: its loss curve left float32's by up to 23% over 200 steps at 256 px)
    built.features = torch.compile(built.extractor) if cfg.compile else built.extractor
    return built

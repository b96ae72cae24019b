"""config -> the parts of one run. Pure: no image is read, no weights are loaded, no target is set.

The one place that calls hydra.utils.instantiate. The command line and the Python API both come through
here, so the same config builds the same run, and every setting is checked before anything is read or
written. The objective is one loop over the terms the config lists (loss.terms); the run (stylelab.run)
reads the inputs, loads the network and prepares each level's images and targets.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stylelab import backend, config
from stylelab.choices import is_clip
from stylelab.controls.colour import Colour
from stylelab.errors import StyleLabError
from stylelab.losses.base import Objective
from stylelab.models.vgg import VGG

MAX_SIZE = 8192  # longest side; beyond this the VGG activations alone outgrow any single GPU


@dataclass(frozen=True)
class Level:
    """One level of a run: its longest side, and the global steps it runs from and to."""

    size: int
    first: int
    last: int


@dataclass(frozen=True)
class Inputs:
    """What a run reads, as named in the config (sample names or paths): nothing is read here."""

    content: str
    styles: list[str]
    blend: list[float]  # style_blend, normalised to sum 1
    content_masks: list[str] | None  # one per region
    style_masks: list[str] | None  # per region, on its style image
    soft: bool  # masks keep their grey levels
    propagation: str  # how a mask reaches each layer
    style_scale: float  # the styles at this fraction of the content's size


@dataclass(frozen=True)
class Watch:
    """How a run is watched; none of it changes the picture."""

    log_every: int = 10  # TensorBoard scalars every N steps
    image_every: int = 50  # TensorBoard image every N steps
    progress: bool = True  # the progress bar
    save_every: int = 0  # step_NNNNN.png every N steps (0: never)


@dataclass
class Parts:
    """One run's parts, from its config."""

    model: VGG  # knows its layers; loads its weights when the run starts
    objective: Objective  # the terms, their weights and targets (set per level by the run)
    optimizer: Callable  # params -> torch optimizer (stylelab.optim)
    init: Callable  # (content, style, seed=) -> the initial image
    colour: Colour  # prepare() the inputs before the run, finish() the picture after it
    levels: list[Level]  # one, or coarse to fine several; steps count on across them
    inputs: Inputs
    device: str  # auto | cpu | cuda
    seed: int
    channels_last: bool
    compile: bool
    tf32: bool
    checkpoint_every: int
    watch: Watch  # how the run is watched: TensorBoard cadence, progress bar, step PNGs
    settings: dict[str, Any] = field(default_factory=dict)  # what changes the picture: fingerprint, HParams
    weight_keys: dict[str, str] = field(default_factory=dict)  # term -> the setting its weight came from (loss.beta)
    layer_weight_keys: dict[str, str] = field(default_factory=dict)  # term -> that of its layer weights
    video: Any = None  # stylelab.video.plan.Video when the content is a clip

    def settings_with(self, balanced: dict[str, float]) -> dict[str, Any]:
        """The settings with the weights a balance chose, under the keys they stand for (loss.beta,
        loss.style_weights): what HParams shows."""
        shown = {self.weight_keys.get(name, name): w for name, w in balanced.items() if "/" not in name}
        for name in {key.partition("/")[0] for key in balanced if "/" in key}:
            key = self.layer_weight_keys.get(name, f"{name}.layer_weights")
            shown[key] = [balanced[f"{name}/{layer}"] for layer in self.objective.terms[name].layers]
        return {**self.settings, **shown}


def make(node: DictConfig, what: str, **runtime: Any):
    """instantiate(node, **runtime), with a user mistake inside the target kept as the one sentence it is.

    what: the config key of the node (loss.style), named when its class cannot be found.
    """
    try:
        return instantiate(node, **runtime)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, StyleLabError):
            raise cause from None
        target = str(node.get("_target_"))
        if isinstance(cause, ImportError):  # Hydra could not import the module of _target_
            module = target.rpartition(".")[0]
            reason = (str(cause.__cause__ or cause).strip().splitlines() or ["not found"])[0]
            raise StyleLabError(
                f"cannot import {target} for {what} ({reason}); put {module.replace('.', '/')}.py "
                f"in the folder you run stylelab from, or add its folder to PYTHONPATH"
            ) from None
        if isinstance(cause, TypeError):  # e.g. an option's YAML names a parameter its class does not take
            raise StyleLabError(f"cannot build {target} ({what}): {cause}") from None
        raise


def _source(cfg: DictConfig, key: str) -> str:
    """The key a value was set under: loss.beta for loss.terms.style.weight, whose value is ${loss.beta}."""
    for _ in range(10):
        raw = OmegaConf.to_container(cfg, resolve=False)
        for part in key.split("."):
            raw = raw.get(part) if isinstance(raw, dict) else None
        if not (isinstance(raw, str) and raw.startswith("${") and raw.endswith("}") and raw.count("${") == 1):
            return key
        key = raw[2:-1]
    return key


def weight_of(value, key: str, target: str) -> float | None:
    """A term's weight: a finite number >= 0, or for a style term None (the weights' balance, set by the run)."""
    if value is None:
        if target != "style":
            raise StyleLabError(
                f"{key} must be a number; only a style term's weight may be null (the balance the "
                f"network's weights call for)"
            )
        return None
    if not math.isfinite(value):
        raise StyleLabError(f"{key} must be a finite number, not {value}")
    if value < 0:
        raise StyleLabError(f"{key} must be >= 0, not {value}")
    return float(value)


def layer_weights(layers, weights, what: str, layers_key: str, weights_key: str) -> dict[str, float]:
    """A term's layers and layer weights -> {layer: w_l}; weights left out are equal and sum to 1."""
    layers = list(layers)
    if len(set(layers)) != len(layers):
        raise StyleLabError(f"{layers_key} lists a layer twice: {layers}")
    if weights is None:
        return {name: 1.0 / len(layers) for name in layers}
    if len(weights) != len(layers):
        raise StyleLabError(f"{weights_key} has {len(weights)} values but {layers_key} has {len(layers)} layers")
    for name, w in zip(layers, weights):
        if not (w >= 0 and math.isfinite(w)):
            raise StyleLabError(f"the {what} weight of {name} must be a number >= 0, not {w!r}")
    return dict(zip(layers, (float(w) for w in weights)))


def objective(cfg: DictConfig, model: VGG, clip: bool = False) -> Objective:
    """The weighted terms the config lists: one loop over loss.terms, each term from its own entry. A term
    whose target is `previous` (a clip's earlier frames) is a clip's only: an image has none."""
    terms, weights, targets = {}, {}, {}
    for name, entry in cfg.loss.terms.items():
        key = f"loss.terms.{name}"
        if str(entry.target) == "previous" and not clip:
            continue
        weights[name] = weight_of(entry.weight, _source(cfg, f"{key}.weight"), str(entry.target))
        runtime = {}
        if entry.layers is not None:
            layers_key, weights_key = _source(cfg, f"{key}.layers"), _source(cfg, f"{key}.layer_weights")
            runtime["layers"] = layer_weights(entry.layers, entry.layer_weights, name, layers_key, weights_key)
        terms[name] = make(entry.term, _source(cfg, f"{key}.term"), **runtime)
        model.check_layers(terms[name].reads, f"{name} layer")
        targets[name] = str(entry.target)
        if entry.layers is not None and not entry.layers and weights[name] != 0:
            given = "null (the weights' balance)" if entry.weight is None else f"{entry.weight:g}"
            warnings.warn(
                f"{_source(cfg, f'{key}.layers')} is empty, so the {name} term is left out although "
                f"{_source(cfg, f'{key}.weight')}={given}",
                stacklevel=2,
            )
    goal = Objective(terms, weights, targets)
    if not goal.layers:
        raise StyleLabError("no content and no style layers: there is nothing to optimise")
    return goal


def schedule(cfg: DictConfig) -> list[Level]:
    """image.size for `steps`, or coarse to fine: schedule.sizes with schedule.steps each."""
    sizes, steps = cfg.schedule.sizes, cfg.schedule.steps
    if sizes is None and steps is None:
        sizes, steps = [cfg.image.size], [cfg.steps]
    elif sizes is None or steps is None or len(sizes) != len(steps) or not sizes:
        raise StyleLabError(
            f"schedule.sizes and schedule.steps must be two lists of the same length, not "
            f"{config.plain(sizes)} and {config.plain(steps)}"
        )
    elif any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise StyleLabError(
            f"schedule.sizes must grow from one level to the next (coarse to fine), not {config.plain(sizes)}"
        )
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


def inputs(cfg: DictConfig, style_term) -> Inputs:
    """The images the run reads, with their counts checked against each other and against the style loss."""
    if not cfg.style_scale > 0 or not math.isfinite(cfg.style_scale):
        raise StyleLabError(f"style_scale must be > 0, not {cfg.style_scale}")
    styles = _specs(cfg.style, "style")
    for style in styles:
        if is_clip(style):
            raise StyleLabError(f"style={style} is a video or a folder; a style is one image, e.g. a painting")
    if cfg.style_blend is not None and len(cfg.style_blend) != len(styles):
        raise StyleLabError(f"style_blend has {len(cfg.style_blend)} weights for {len(styles)} styles")
    blend = [1.0] * len(styles) if cfg.style_blend is None else [float(w) for w in cfg.style_blend]
    if not all(w >= 0 and math.isfinite(w) for w in blend) or sum(blend) <= 0:
        raise StyleLabError(f"style_blend must be weights >= 0 with a positive sum, not {blend}")
    content_masks = style_masks = None
    if cfg.mask.content is not None:
        content_masks = _specs(cfg.mask.content, "mask.content")
        regions = len(content_masks)
        if len(styles) not in (1, regions):
            raise StyleLabError(
                f"mask.content has {regions} masks but style has {len(styles)} images: give one "
                f"style per region, or one style for all"
            )
        if cfg.style_blend is not None:
            raise StyleLabError(
                "style_blend mixes styles over the whole image; with mask.content each region has "
                "its own style, so leave style_blend out"
            )
        if not getattr(style_term, "guides", False):
            raise StyleLabError(
                f"mask.content needs a style loss with spatial control; {type(style_term).__name__} "
                f"has none (loss/style=gram has)"
            )
        if cfg.mask.style is not None:
            style_masks = _specs(cfg.mask.style, "mask.style")
            if len(style_masks) != regions:
                raise StyleLabError(
                    f"mask.style has {len(style_masks)} masks but mask.content has {regions}: give one per region"
                )
    elif cfg.mask.style is not None:
        raise StyleLabError("mask.style picks a part of each region's style image; it needs mask.content")
    elif len(styles) > 1 and not getattr(style_term, "blends", False):
        raise StyleLabError(
            f"{type(style_term).__name__} cannot blend several styles; give one style, or choose "
            f"loss/style=gram, mean_std or w2"
        )
    return Inputs(
        _specs(cfg.content, "content")[0],
        styles,
        [w / sum(blend) for w in blend],
        content_masks,
        style_masks,
        bool(cfg.mask.soft),
        str(cfg.mask.propagation),
        float(cfg.style_scale),
    )


def build(cfg: DictConfig, choices: dict[str, str] | None = None) -> Parts:
    """Check every setting and build the parts of the run `cfg` describes.

    choices: the option each config group took ({"loss/style": "gram", ...}), fingerprinted and shown in
    HParams under the group's name.
    """
    if cfg.steps < 0:
        raise StyleLabError(f"steps must be >= 0, not {cfg.steps}")
    if cfg.checkpoint_every < 0:
        raise StyleLabError(f"checkpoint_every must be >= 0, not {cfg.checkpoint_every}")
    backend.resolve_device(str(cfg.device))  # cuda without a GPU is a mistake now, not later
    model = make(cfg.model, "model")
    clip = is_clip(config.plain(cfg.content)) if isinstance(config.plain(cfg.content), str) else False
    goal = objective(cfg, model, clip)
    runs = schedule(cfg)
    smallest = max(model.min_input_side(goal.layers), *(term.min_side for term in goal.terms.values()))
    for level in runs:
        if not smallest <= level.size <= MAX_SIZE:
            what = "image.size" if cfg.schedule.sizes is None else "every size of schedule.sizes"
            raise StyleLabError(
                f"{what} must be between {smallest} (for the layers chosen) and {MAX_SIZE} pixels, not {level.size}"
            )
    style_terms = [term for name, term in goal.terms.items() if goal.targets[name] == "style"]
    chosen = {
        group: option for group, option in (choices or {}).items() if option is not None and not config.is_inert(group)
    }
    return Parts(
        model=model,
        objective=goal,
        optimizer=make(cfg.optimizer, "optimizer"),
        init=make(cfg.init, "init"),
        colour=make(cfg.colour, "colour"),
        levels=runs,
        inputs=inputs(cfg, style_terms[0] if style_terms else None),
        device=str(cfg.device),
        seed=int(cfg.seed),
        channels_last=bool(cfg.channels_last),
        compile=bool(cfg.compile),
        tf32=bool(cfg.tf32),
        checkpoint_every=int(cfg.checkpoint_every),
        watch=Watch(int(cfg.log.every), int(cfg.log.image_every), bool(cfg.log.progress), int(cfg.save_every)),
        # the options chosen first, so a mismatch is named as the user chose it (optimizer='lbfgs', not its class)
        settings={**chosen, **config.settings(cfg)} if clip else config.image_only({**chosen, **config.settings(cfg)}),
        video=make(cfg.video, "video") if clip else None,
        weight_keys={name: _source(cfg, f"loss.terms.{name}.weight") for name in goal.terms},
        layer_weight_keys={
            name: _source(cfg, f"loss.terms.{name}.layer_weights")
            for name in goal.terms
            if cfg.loss.terms[name].get("layers") is not None
        },
    )

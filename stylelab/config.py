"""The one config schema, registered in Hydra's ConfigStore, and what is derived from a config.

A typo in a key or a value of the wrong type fails when Hydra composes the config, before any work:

- The run's own settings are the dataclasses below, with their defaults and one line of help each
  (`stylelab --help` prints them). configs/config.yaml only chooses the options of the groups.
- Every option of a swappable part (model, the loss terms, init, optimizer, colour) is a YAML naming its
  class or function in `_target_`. Its schema, `<option>_schema` in its group, is registered here from that
  target's signature (stylelab.signatures). A YAML lists its schema first in its defaults.
- The objective is data: `loss.terms` maps each term's name to its class, weight, layers and target.

Also here, because folder names, checkpoint fingerprints and HParams must agree on it: INERT, the one list
of settings that do not change the picture, and `settings`, a config as {dotted key: plain value}.
Library code never sees a config: build.py turns one into plain arguments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from stylelab.choices import Corner, Device, Propagation, Target
from stylelab.errors import StyleLabError
from stylelab.signatures import SCHEMA_SUFFIX, choice, package_options, schema_of

# Settings that do not change the picture: how fast it is made, where and how it is watched, what is
# written besides final.png. Prefixes of dotted keys. Run folders are not named after them, checkpoints
# do not fingerprint them (a resumed run may change them) and HParams leave them out.
INERT = (
    "device",
    "compile",
    "channels_last",
    "tf32",
    "model.checkpointing",
    "log",
    "save_every",
    "checkpoint_every",
    "resume",
    "figure",
    "hydra",
)


def is_inert(key: str) -> bool:
    """Whether a dotted config key (`log.every`, `hydra.launcher.n_jobs`) names a setting in INERT."""
    key = key.lstrip("+~")
    return any(key == prefix or key.startswith(prefix + ".") or key.startswith(prefix + "/") for prefix in INERT)


# ---------------------------------------------------------------- the run's own settings


def _help(text: str, default=MISSING, **kwargs):
    """A field with one line of help for `stylelab --help`."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": text}, **kwargs)
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass
class TermEntry:
    """One term of the objective: what computes it, how much it weighs, what it reads and compares against."""

    term: Any = _help("the term's class and options (_target_: ...), e.g. ${loss.style}")
    weight: Optional[float] = _help(
        "its weight in the total (alpha, beta, ...); a style term's may be null: the weights' own balance"
    )
    layers: Optional[List[str]] = _help("the layers it reads (null: a term of the image itself)", None)
    layer_weights: Optional[List[float]] = _help("w_l per layer (null: equal, summing to 1)", None)
    target: choice(Target) = _help(
        "what it compares against: content | style | previous (a clip's earlier frames) | none", choice(Target)("none")
    )


@dataclass
class LossConfig:
    # Layer sets are lists because Hydra replaces a list on override but merges a dict into the default.
    content_layers: List[str] = _help("the content term's layers")
    content_weights: Optional[List[float]] = _help("their weights (null: equal, summing to 1)", None)
    style_layers: List[str] = _help("the style term's layers")
    style_weights: Optional[List[float]] = _help("their weights w_l (null: equal, summing to 1)", None)
    alpha: float = _help("the content term's weight")
    beta: Optional[float] = _help("the style term's weight (null: the balance the weights call for)")
    tv_weight: float = _help("the total-variation term's weight")
    laplacian_weight: float = _help("the Laplacian term's weight (Li et al. 2017; 0: off)")
    temporal_weight: float = _help("a clip's temporal term's weight (Ruder et al. 2016; 0: frames independent)")
    # the classes of the terms: the options of the groups loss/content, loss/style, loss/tv, loss/laplacian
    content: Any = MISSING
    style: Any = MISSING
    tv: Any = MISSING
    laplacian: Any = MISSING
    temporal: Any = MISSING
    terms: Dict[str, TermEntry] = field(default_factory=dict, metadata={"help": "the objective, term by term"})


@dataclass
class ImageConfig:
    size: int = _help("longest side of the output, in pixels", 512)


@dataclass
class LogConfig:
    every: int = _help("TensorBoard scalars every N steps", 10)
    image_every: int = _help("TensorBoard image every N steps", 50)
    progress: bool = _help("the progress bar", True)


@dataclass
class MaskConfig:
    """Spatial control: one mask per region of the content, one style per region (Gatys et al. 2017)."""

    content: Optional[List[str]] = _help("mask images, one per region (white = in the region)", None)
    style: Optional[List[str]] = _help("optional: where in each region's style image to take its style", None)
    propagation: choice(Propagation) = _help(
        "how a mask reaches each layer: simple | inside | all", choice(Propagation)("simple")
    )
    soft: bool = _help("keep grey levels (default: threshold at 0.5)", False)


@dataclass
class ScheduleConfig:
    """Coarse to fine: a run in levels of growing size, each starting from the last one's result."""

    sizes: Optional[List[int]] = _help("longest side per level, e.g. [512,1024] (null: one level, image.size)", None)
    steps: Optional[List[int]] = _help("optimizer steps per level, e.g. [500,200]", None)


@dataclass
class FigureConfig:
    """How `stylelab-figure` lays out a sweep of this config; its --rows/--cols/--inset flags win."""

    rows: Optional[str] = _help("override key whose swept values make the rows", None)
    cols: Optional[str] = _help("override key whose swept values make the columns", None)
    inset: Optional[choice(Corner)] = _help("the corner where each cell shows the style image small", None)
    title: str = _help("text above the grid", "")
    ratios: bool = _help("under each value of loss.alpha or loss.beta, the paper's alpha/beta too", False)


@dataclass
class StyleLabConfig:
    content: str = _help("a sample name or the path of any image Pillow reads", "tubingen")
    style: Any = _help("an image, or a list: blended (style_blend) or one per region (mask.content)", "starry_night")
    style_blend: Optional[List[float]] = _help("weights of several styles, normalised to sum 1 (null: equal)", None)
    style_scale: float = _help("the style images at this fraction of the content's size (1: the paper's)", 1.0)
    steps: int = _help("optimizer steps", 500)
    seed: int = _help("seeds the initial noise and every random draw", 0)
    device: choice(Device) = _help("auto | cpu | cuda", choice(Device)("auto"))
    save_every: int = _help("also write step_NNNNN.png every N steps (0: never)", 0)
    checkpoint_every: int = _help("also write checkpoint.pt every N steps (0: only when stopped)", 0)
    resume: Optional[str] = _help("a run or sweep folder to continue where it stopped", None)
    compile: bool = _help("torch.compile the feature extractor (a pause at the start)", False)
    channels_last: bool = _help("NHWC activations: faster convolutions", True)
    tf32: bool = _help("CUDA only: TF32 convolutions (the Grams stay full float32)", True)
    model: Any = MISSING  # an option of the group model
    loss: LossConfig = field(default_factory=LossConfig)
    init: Any = MISSING  # an option of the group init
    optimizer: Any = MISSING  # an option of the group optimizer
    colour: Any = MISSING  # an option of the group colour
    video: Any = MISSING  # an option of the group video (a clip's: flow, long-term frames, passes)
    mask: MaskConfig = field(default_factory=MaskConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    log: LogConfig = field(default_factory=LogConfig)
    figure: FigureConfig = field(default_factory=FigureConfig)
    # Named user images an experiment refers to as ${inputs.NAME} (e.g. fig3's inputs.picasso=<file>).
    inputs: Dict[str, str] = field(default_factory=dict, metadata={"help": "named images an experiment refers to"})


def help_lines(schema=StyleLabConfig, prefix: str = ""):
    """(dotted key, default, help) for every setting of the run's schema that has a line of help."""
    for f in dataclasses.fields(schema):
        kind = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(kind) and not isinstance(kind, type):
            yield from help_lines(type(kind), f"{prefix}{f.name}.")
        elif "help" in f.metadata:
            yield f"{prefix}{f.name}", kind, f.metadata["help"]


_registered = False


def register() -> None:
    """The schemas into Hydra's ConfigStore (once): the run's, and one per option from its target's signature."""
    global _registered
    if _registered:
        return
    _registered = True
    store = ConfigStore.instance()
    store.store(name="stylelab_schema", node=StyleLabConfig)
    for group, option, node in package_options():
        store.store(
            group=group,
            name=option + SCHEMA_SUFFIX,
            node=schema_of(node["_target_"], bool(node.get("_partial_", False))),
        )


# ---------------------------------------------------------------- derived from a config


def _walk(node, prefix: str = "", out: dict | None = None) -> dict[str, Any]:
    """A nested plain container as {dotted key: leaf}."""
    out = {} if out is None else out
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _walk(value, f"{prefix}{key}.", out)
    else:
        out[prefix[:-1]] = node
    return out


def plain(value):
    """A config node as plain Python (lists, dicts, resolved); any other value as it is."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def flatten(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as {dotted key: plain value} (lists stay lists, enums become strings)."""
    return _walk(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def flatten_keys(cfg: DictConfig) -> list[str]:
    """Every dotted key of a config, without resolving its values."""
    return list(_walk(OmegaConf.to_container(cfg, resolve=False)))


def _references(cfg: DictConfig) -> set[str]:
    """Keys whose value is only a reference to another setting (`weight: ${loss.beta}`), and all below them."""
    raw = _walk(OmegaConf.to_container(cfg, resolve=False))
    return {
        key
        for key, value in raw.items()
        if isinstance(value, str)
        and value.startswith("${")
        and value.endswith("}")
        and value.count("${") == 1
        and not value[2:-1].startswith(("inputs.", "hydra:"))
    }


def settings(cfg: DictConfig) -> dict[str, Any]:
    """Every setting that changes the picture, flat: what checkpoints fingerprint and HParams show.

    A value that only refers to another setting (a term's weight ${loss.beta}) is that setting, not one of
    its own; inputs.* are named images that content or style refer to, whose resolved values are here.
    """
    references = _references(cfg)
    return {
        key: value
        for key, value in flatten(cfg).items()
        if not is_inert(key)
        and key.split(".")[0] != "inputs"
        and not any(key == ref or key.startswith(ref + ".") for ref in references)
    }


# A clip's own settings: an image run neither fingerprints nor shows them (they cannot change its picture)
CLIP_ONLY = ("video", "loss.temporal", "loss.terms.temporal")


def image_only(settings: dict[str, Any]) -> dict[str, Any]:
    """An image run's settings: without the clip's own (CLIP_ONLY), nor the group choices of those."""
    return {
        key: value
        for key, value in settings.items()
        if not any(
            key == p or key.startswith(p + ".") or key.startswith(p + "_") or key.startswith(p.replace(".", "/"))
            for p in CLIP_ONLY
        )
    }


def missing_keys(cfg: DictConfig) -> list[str]:
    """Dotted keys left as ??? (experiments mark user-supplied images so: fig7's photos, fig3's inputs.picasso).

    Found without resolving, so `style: ${inputs.picasso}` pointing at one is not a second error.
    """
    return [key for key, value in _walk(OmegaConf.to_container(cfg, resolve=False)).items() if value == "???"]


def require_values(cfg: DictConfig, where: str = "on the command line") -> None:
    """One sentence naming the keys left as ??? (missing_keys), and how to give the first."""
    missing = missing_keys(cfg)
    if missing:
        raise StyleLabError(
            f"this config needs a value for {', '.join(missing)}: give it {where}, e.g. {missing[0]}=<...>"
        )

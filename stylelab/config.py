"""The one config schema: dataclasses registered in Hydra's ConfigStore, and what is derived from a config.

A typo in a key or a value of the wrong type fails when Hydra composes the config, before any work:
the top-level schema types the run's own settings, and every option of a swappable part (model, the loss
terms, init, optimizer, colour) has a schema named `<option>_schema` in its group, which its YAML lists first in
its defaults. The YAML holds the values and `_target_`, the class or function that build.py instantiates.

Also here, because folder names, checkpoint fingerprints and HParams must agree on it: INERT, the one list
of settings that do not change the picture, and `flatten`, a config as {dotted key: plain value}.
Only config.py, overrides.py, build.py, job.py, api.py and cli/ know about configs; library code takes plain
arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# Settings that do not change the picture: how fast it is made, where and how it is watched, what is
# written besides final.png. Prefixes of dotted keys. Run folders are not named after them, checkpoints
# do not fingerprint them (a resumed run may change them) and HParams leave them out.
INERT = ("device", "compile", "channels_last", "tf32", "model.checkpointing", "log", "save_every", "checkpoint_every",
         "resume", "figure", "hydra")


def is_inert(key: str) -> bool:
    """Whether a dotted config key (`log.every`, `hydra.launcher.n_jobs`) names a setting in INERT."""
    key = key.lstrip("+~")
    return any(key == prefix or key.startswith(prefix + ".") or key.startswith(prefix + "/") for prefix in INERT)


class Choice(str, Enum):
    """An enum whose members are their plain string values, so library code can take them as str."""

    def __str__(self) -> str:
        return self.value


class Pooling(Choice):
    avg = "avg"
    max = "max"


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class LineSearch(Choice):
    strong_wolfe = "strong_wolfe"


class WeightFormat(Choice):
    auto = "auto"
    torchvision = "torchvision"
    caffe = "caffe"
    matconvnet = "matconvnet"


class ColourMethod(Choice):
    pca = "pca"
    chol = "chol"
    sym = "sym"


class Propagation(Choice):
    simple = "simple"
    inside = "inside"
    all = "all"


class Corner(Choice):
    bottom_left = "bottom_left"
    bottom_right = "bottom_right"
    top_left = "top_left"
    top_right = "top_right"


# ---------------------------------------------------------------- options of the swappable parts


@dataclass
class Target:
    """Every option of a swappable part names what builds it: a class or, with _partial_, a function."""

    _target_: str = MISSING


@dataclass
class VGG19Config(Target):
    weights: str = MISSING  # imagenet | random | a path to a .pth (torchvision layout) or MatConvNet .mat
    format: WeightFormat = MISSING  # the file's input convention; auto never guesses (see README)
    pooling: Pooling = MISSING
    checkpointing: bool = MISSING  # recompute activations in the backward pass: less memory, more time


@dataclass
class PlainConfig(Target):
    """An option with no settings of its own (gram, mean_std, the content loss, tv; colour none, luminance, original)."""


@dataclass
class W2Config(Target):
    eps: float = MISSING  # added to the style covariance's diagonal before its square root


@dataclass
class SlicedW2Config(Target):
    projections: Optional[int] = MISSING  # directions per layer (null: N_l, the layer's filters)
    seed: int = MISSING  # the directions of step s come from a generator seeded by (seed, s)


@dataclass
class PartialConfig(Target):
    _partial_: bool = True


@dataclass
class ImageInitConfig(PartialConfig):
    path: Optional[str] = MISSING  # init=image: an image file, resized to the content's size


@dataclass
class LBFGSConfig(Target):
    lr: float = MISSING
    history_size: int = MISSING
    line_search: Optional[LineSearch] = MISSING
    tolerance_grad: float = MISSING
    tolerance_change: float = MISSING


@dataclass
class AdamConfig(Target):
    lr: float = MISSING
    tolerance_grad: float = MISSING
    tolerance_change: float = MISSING


@dataclass
class MatchConfig(Target):
    method: ColourMethod = MISSING  # pca | chol | sym: how the style's colours are mapped to the content's
    eps: float = MISSING  # added to both pixel covariances before their roots and inverses


# group -> {option: schema}; each option's YAML lists `<option>_schema` first in its defaults
OPTION_SCHEMAS: Dict[str, Dict[str, type]] = {
    "model": {"vgg19": VGG19Config},
    "loss/content": {"l2": PlainConfig},
    "loss/style": {"gram": PlainConfig, "mean_std": PlainConfig, "w2": W2Config, "sliced_w2": SlicedW2Config},
    "loss/tv": {"l2": PlainConfig},
    "init": {"noise": PartialConfig, "content": PartialConfig, "style": PartialConfig, "image": ImageInitConfig},
    "optimizer": {"lbfgs": LBFGSConfig, "adam": AdamConfig},
    "colour": {"none": PlainConfig, "luminance": PlainConfig, "match": MatchConfig, "original": PlainConfig},
}
SCHEMA_SUFFIX = "_schema"


# ---------------------------------------------------------------- the run's own settings


@dataclass
class LossConfig:
    # Layer sets are lists because Hydra replaces a list on override but merges a dict into the default.
    content_layers: List[str] = MISSING
    content_weights: Optional[List[float]] = None  # None: equal weights summing to 1
    style_layers: List[str] = MISSING
    style_weights: Optional[List[float]] = None  # None: equal weights summing to 1 (the paper's w_l = 1/5)
    alpha: float = MISSING  # weight of the content term
    beta: float = MISSING  # weight of the style term
    tv_weight: float = MISSING  # weight of the total-variation term
    # the terms themselves: the options of the groups loss/content, loss/style, loss/tv
    content: Any = MISSING
    style: Any = MISSING
    tv: Any = MISSING


@dataclass
class ImageConfig:
    size: int = MISSING  # longest side of the output, in pixels


@dataclass
class LogConfig:
    every: int = MISSING  # scalars every N steps
    image_every: int = MISSING  # image/generated every N steps
    progress: bool = MISSING  # tqdm bar


@dataclass
class MaskConfig:
    """Spatial control: one mask per region of the content, one style per region (Gatys et al. 2017)."""

    content: Optional[List[str]] = None  # image files, one per region (white = in the region)
    style: Optional[List[str]] = None  # optional: the part of each region's style image to take the style from
    propagation: Propagation = Propagation.simple  # how a mask reaches each layer: simple | inside | all
    soft: bool = False  # keep grey levels; by default a mask is thresholded at 0.5


@dataclass
class ScheduleConfig:
    """Coarse to fine: a run in levels of growing size, each starting from the last one's result."""

    sizes: Optional[List[int]] = None  # longest side per level; null: one level of image.size
    steps: Optional[List[int]] = None  # optimizer steps per level


@dataclass
class FigureConfig:
    """How `stylelab-figure` lays out a sweep of this config; its --rows/--cols/--inset flags win."""

    rows: Optional[str] = None  # override key whose swept values make the rows (e.g. loss.style_layers)
    cols: Optional[str] = None  # override key whose swept values make the columns (e.g. loss.beta)
    inset: Optional[Corner] = None  # where each cell shows the style image small, as the paper's Fig 3
    title: str = ""


@dataclass
class StyleLabConfig:
    content: str = MISSING
    style: Any = MISSING  # an image, or a list of images: blended (style_blend) or one per region (mask.content)
    style_blend: Optional[List[float]] = None  # weights of several styles, normalised to sum 1 (null: equal)
    style_scale: float = MISSING  # the style images at this fraction of the content's size (the paper: 1)
    steps: int = MISSING
    seed: int = MISSING
    device: Device = MISSING
    save_every: int = MISSING  # write step_NNNNN.png every N steps (0 = never)
    checkpoint_every: int = MISSING  # write checkpoint.pt every N steps (0 = only when stopped by a signal)
    resume: Optional[str] = None  # a run dir: continue that run from its checkpoint.pt, in that dir
    compile: bool = MISSING  # torch.compile the feature extractor
    channels_last: bool = MISSING  # NHWC activations (faster convolutions)
    tf32: bool = MISSING  # CUDA only: TF32 convolutions (Grams stay full float32)
    model: Any = MISSING  # an option of the group model
    loss: LossConfig = field(default_factory=LossConfig)
    init: Any = MISSING  # an option of the group init
    optimizer: Any = MISSING  # an option of the group optimizer
    colour: Any = MISSING  # an option of the group colour
    mask: MaskConfig = field(default_factory=MaskConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    log: LogConfig = field(default_factory=LogConfig)
    figure: FigureConfig = field(default_factory=FigureConfig)
    # Named user images an experiment refers to as ${inputs.NAME} (e.g. fig3's inputs.picasso=<file>).
    inputs: Dict[str, str] = field(default_factory=dict)


def groups_help() -> str:
    """`stylelab --help`'s list of config groups and their options (Hydra's own list would show the schemas)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    loader = GlobalHydra.instance().config_loader()

    def walk(parent: str):
        for group in loader.list_groups(parent):
            name = f"{parent}/{group}" if parent else group
            if name == "hydra":
                continue
            options = [o for o in loader.get_group_options(name, ObjectType.CONFIG) if not o.endswith(SCHEMA_SUFFIX)]
            if options:
                yield name, f"{name}: {', '.join(sorted(options))}"
            yield from walk(name)

    return "".join(line + "\n" for _, line in sorted(walk("")))


def _sweep_dirname(overrides, num: int, sweep_dir: str) -> str:
    from stylelab.cli.sweep import job_dirname as dirname  # Hydra's side of naming; imported when a sweep runs

    return dirname(overrides, num, sweep_dir)


_registered = False


def register() -> None:
    """The schemas into Hydra's ConfigStore, and the resolvers configs/hydra/default.yaml uses (once)."""
    global _registered
    if _registered:
        return
    _registered = True
    OmegaConf.register_new_resolver("stylelab_dirname", _sweep_dirname, replace=True)
    # hydra.run.dir and output_subdir: a resumed run goes on in the folder it continues
    OmegaConf.register_new_resolver("stylelab_if_resumed", lambda resume, yes, no: yes if resume else no, replace=True)
    OmegaConf.register_new_resolver("stylelab_groups", groups_help, replace=True)
    store = ConfigStore.instance()
    store.store(name="stylelab_schema", node=StyleLabConfig)
    for group, options in OPTION_SCHEMAS.items():
        for option, schema in options.items():
            store.store(group=group, name=option + SCHEMA_SUFFIX, node=schema)


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


def settings(cfg: DictConfig) -> dict[str, Any]:
    """Every setting that changes the picture, flat: what checkpoints fingerprint and HParams show."""
    # inputs.* are named images that content or style refer to: their resolved values are already here
    return {key: value for key, value in flatten(cfg).items() if not is_inert(key) and key.split(".")[0] != "inputs"}


def missing_keys(cfg: DictConfig) -> list[str]:
    """Dotted keys left as ??? (experiments mark user-supplied images so: fig7's photos, fig3's inputs.picasso).

    Found without resolving, so `style: ${inputs.picasso}` pointing at one is not a second error.
    """
    return [key for key, value in _walk(OmegaConf.to_container(cfg, resolve=False)).items() if value == "???"]

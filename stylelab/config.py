"""Dataclass schemas for the Hydra configs, registered in Hydra's ConfigStore.

A typo in a key or a value of the wrong type fails when Hydra composes the config, before any work.
Only cli.py imports this module: library code takes plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional

from hydra.core.config_store import ConfigStore


class Pooling(Enum):
    avg = "avg"
    max = "max"


class Device(Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class InitKind(Enum):
    noise = "noise"
    content = "content"
    style = "style"
    image = "image"


class OptimizerName(Enum):
    lbfgs = "lbfgs"
    adam = "adam"


class LineSearch(Enum):
    strong_wolfe = "strong_wolfe"


class WeightFormat(Enum):
    auto = "auto"
    torchvision = "torchvision"
    caffe = "caffe"
    matconvnet = "matconvnet"


@dataclass
class ModelConfig:
    weights: str = "imagenet"  # imagenet | random | path to a .pth (torchvision layout) or MatConvNet .mat
    format: WeightFormat = WeightFormat.auto  # the file's input convention; auto never guesses (see README)
    pooling: Pooling = Pooling.avg


@dataclass
class LossConfig:
    # Layer sets are lists because Hydra replaces a list on override but merges a dict into the default.
    content_layers: List[str] = field(default_factory=lambda: ["relu4_2"])
    content_weights: Optional[List[float]] = None  # None: equal weights summing to 1
    style_layers: List[str] = field(default_factory=lambda: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
    style_weights: Optional[List[float]] = None  # None: equal weights summing to 1 (the paper's w_l = 1/5)
    alpha: float = 1.0
    beta: float = 1.032e9
    tv_weight: float = 0.0


@dataclass
class InitConfig:
    kind: InitKind = InitKind.noise
    path: Optional[str] = None  # for kind=image


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.lbfgs
    lr: float = 1.0
    history_size: int = 100
    line_search: Optional[LineSearch] = None
    tolerance_grad: float = 0.0
    tolerance_change: float = 0.0


@dataclass
class ImageConfig:
    size: int = 512  # longest side of the output, in pixels


@dataclass
class LogConfig:
    every: int = 10  # scalars every N steps
    image_every: int = 50  # image/generated every N steps
    progress: bool = True  # tqdm bar


class Corner(Enum):
    bottom_left = "bottom_left"
    bottom_right = "bottom_right"
    top_left = "top_left"
    top_right = "top_right"


@dataclass
class FigureConfig:
    """How `stylelab-figure` lays out a sweep of this config; its --rows/--cols/--inset flags win."""

    rows: Optional[str] = None  # override key whose swept values make the rows (e.g. loss.style_layers)
    cols: Optional[str] = None  # override key whose swept values make the columns (e.g. loss.beta)
    inset: Optional[Corner] = None  # where each cell shows the style image small, as the paper's Fig 3
    title: str = ""


@dataclass
class StyleLabConfig:
    content: str = "tubingen"
    style: str = "starry_night"
    steps: int = 500
    seed: int = 0
    device: Device = Device.auto
    save_every: int = 0  # write step_NNNNN.png every N steps (0 = never)
    checkpoint_every: int = 0  # write checkpoint.pt every N steps (0 = only when stopped by a signal)
    resume: Optional[str] = None  # a run dir: continue that run from its checkpoint.pt, in that dir
    compile: bool = False  # torch.compile the feature extractor
    channels_last: bool = True  # NHWC activations (faster convolutions)
    tf32: bool = True  # CUDA only: TF32 convolutions (Grams stay full float32)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    init: InitConfig = field(default_factory=InitConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    log: LogConfig = field(default_factory=LogConfig)
    figure: FigureConfig = field(default_factory=FigureConfig)
    # Named user images an experiment refers to as ${inputs.NAME} (e.g. fig3's inputs.picasso=<file>).
    inputs: Dict[str, str] = field(default_factory=dict)


def register() -> None:
    ConfigStore.instance().store(name="stylelab_schema", node=StyleLabConfig)

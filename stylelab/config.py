"""Dataclass schemas for the Hydra configs, registered in Hydra's ConfigStore.

A typo in a key or a value of the wrong type fails when Hydra composes the config, before any work.
Only cli.py imports this module: library code takes plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional

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


@dataclass
class ModelConfig:
    weights: str = "imagenet"  # imagenet | random | path to a torchvision-layout .pth
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


@dataclass
class StyleLabConfig:
    content: str = "tubingen"
    style: str = "starry_night"
    steps: int = 500
    seed: int = 0
    device: Device = Device.auto
    save_every: int = 0  # write step_NNNNN.png every N steps (0 = never)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    init: InitConfig = field(default_factory=InitConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    log: LogConfig = field(default_factory=LogConfig)


def register() -> None:
    ConfigStore.instance().store(name="stylelab_schema", node=StyleLabConfig)

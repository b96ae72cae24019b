"""stylelab: optimisation-based neural style transfer (Gatys, Ecker & Bethge), faithful and fast.

Notebook use needs no Hydra:
    stylelab.stylize(content, style, size=..., steps=...)  -> PIL image
    stylelab.transfer(content, style, Settings(...))        -> RunResult (image tensor, losses, timing)
    stylelab.VGGFeatures / build_extractor, stylelab.losses  -> the pieces as plain modules
"""

from stylelab.api import Settings, stylize, transfer
from stylelab.errors import StyleLabError
from stylelab.trainer import OptimizerSpec, RunResult, optimize
from stylelab.vgg import LAYER_NAMES, VGGFeatures, build_extractor

__all__ = [
    "LAYER_NAMES",
    "OptimizerSpec",
    "RunResult",
    "Settings",
    "StyleLabError",
    "VGGFeatures",
    "build_extractor",
    "optimize",
    "stylize",
    "transfer",
]

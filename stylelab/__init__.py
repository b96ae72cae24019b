"""stylelab: optimisation-based neural style transfer (Gatys, Ecker & Bethge), faithful and fast.

From a notebook, with the `stylelab` command's configs and code path:
    stylelab.stylize(content, style, "image.size=256", steps=200)   -> PIL image
    stylelab.transfer(content, style, "loss/style=w2")              -> RunResult (image tensor, losses, timing)
    stylelab.compose(...) and stylelab.run(cfg, run_dir)             -> the config, and a run folder as the CLI's
    stylelab.build_extractor, stylelab.losses                        -> the pieces as plain modules
"""

from stylelab.api import compose, run, stylize, transfer
from stylelab.errors import StyleLabError
from stylelab.extractors.vgg import LAYER_NAMES, VGGFeatures, build_extractor
from stylelab.loop import RunResult, optimize

__all__ = [
    "LAYER_NAMES",
    "RunResult",
    "StyleLabError",
    "VGGFeatures",
    "build_extractor",
    "compose",
    "optimize",
    "run",
    "stylize",
    "transfer",
]

"""stylelab: optimisation-based neural style transfer (Gatys, Ecker & Bethge), faithful and fast.

From a notebook, with the `stylelab` command's configs and code path:
    stylelab.stylize(content, style, "image.size=256", steps=200)   -> PIL image
    stylelab.transfer(content, style, "loss/style=w2")              -> RunResult (picture tensor, losses, timing)
    stylelab.compose(...) and stylelab.run(cfg, run_dir)             -> the config, and a run folder as the CLI's
    stylelab.build_extractor, stylelab.VGG, stylelab.losses          -> the pieces as plain modules
"""

import importlib

from stylelab.errors import StyleLabError

# name -> module. Imported when first used, so that `import stylelab` and the stylelab-* tools that need
# neither torch nor Hydra (stylelab-summary's --help) do not pay for them.
_EXPORTS = {
    "compose": "stylelab.overrides",
    "run": "stylelab.api",
    "stylize": "stylelab.api",
    "transfer": "stylelab.api",
    "RunResult": "stylelab.loop",
    "VGG": "stylelab.models.vgg",
    "VGGFeatures": "stylelab.models.vgg",
    "build_extractor": "stylelab.models.vgg",
}

__all__ = ["StyleLabError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stylelab' has no attribute {name!r}")

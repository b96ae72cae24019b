"""The Python API: the `stylelab` command's config and code path, from a notebook.

    >>> import stylelab
    >>> picture = stylelab.stylize("photo.jpg", "starry_night", "image.size=256", steps=200)   # a PIL image
    >>> cfg = stylelab.compose("image.size=256", "loss/style=w2", optimizer="adam")            # the CLI's config
    >>> result = stylelab.run(cfg, run_dir="out/run1")   # final.png, TensorBoard, .hydra/ as `stylelab` writes them

Settings are the command line's overrides: strings as you would type them ("loss.beta=5e8",
"loss/style=mean_std"), or keyword arguments for top-level keys and config groups (steps=200,
optimizer="adam"; lists and numbers are written out for you). There is no second settings class: the
config is composed by Hydra from the same files, with the same defaults, and checked by the same schema.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from stylelab import build, config, loop
from stylelab.errors import StyleLabError
from stylelab.io import images, samples
from stylelab.loop import RunResult
from stylelab.observers import Observer
from stylelab.overrides import compose, compose_with_choices, override_value
from stylelab.sweeps import read
from stylelab.video import run as clip

__all__ = ["compose", "compose_with_choices", "override_value", "run", "stylize", "transfer"]


def run(
    cfg: DictConfig | None = None,
    run_dir: str | Path | None = None,
    *,
    choices: dict[str, str] | None = None,
    pictures: dict[str, torch.Tensor] | None = None,
    observers: tuple[Observer, ...] = (),
) -> RunResult | clip.ClipResult:
    """Run a composed config, exactly as the `stylelab` command does; with `run_dir`, write the same files
    (final.png, TensorBoard events, .hydra/ with the config, so stylelab-summary and resume= read the folder).
    A clip (content=<video or folder>) needs run_dir, and returns a stylelab.video.run.ClipResult."""
    if cfg is None:
        cfg, choices = compose_with_choices()
    config.require_values(cfg, "as an override")
    parts = build.build(cfg, choices)
    folder = Path(run_dir) if run_dir is not None else None
    if cfg.resume:
        if folder is not None and folder.resolve() != Path(cfg.resume).resolve():
            raise StyleLabError("resume= goes on in the folder it continues; leave run_dir out or give that folder")
        folder = Path(cfg.resume)
    if folder is not None and not cfg.resume:
        read.write_record(folder, OmegaConf.to_yaml(cfg), [], choices or {})
    notes = {"command": "`stylelab.run(cfg)` from Python", "config": "```yaml\n" + OmegaConf.to_yaml(cfg) + "```"}
    if parts.video is not None:  # a clip: frame by frame, in its folder
        if folder is None:
            raise StyleLabError("a clip is written frame by frame into a folder: give run_dir")
        return clip.run_clip(parts, folder, resume=bool(cfg.resume), observers=observers, notes=notes)
    return loop.run(parts, folder, pictures=pictures, resume=bool(cfg.resume), observers=observers, notes=notes)


def _as_tensor(picture) -> torch.Tensor:
    """A PIL image or a (3, H, W) / (1, 3, H, W) tensor in [0, 1] -> (3, H, W)."""
    if isinstance(picture, torch.Tensor):
        return picture.detach().float().cpu().reshape(3, *picture.shape[-2:])
    return images.pil_to_tensor(picture)


def transfer(content, style, *overrides: str, run_dir: str | Path | None = None, **values: Any) -> RunResult:
    """`content` in the style of `style`: paths or sample names, PIL images or (3, H, W) tensors in [0, 1];
    `style` may be a list of them (blended, or one per region of mask.content).
    Returns the RunResult (the picture as a tensor, final losses per term, timing, why it stopped)."""
    pictures, named = {}, []
    for key, given in (("content", content), ("style", style)):
        items = list(given) if isinstance(given, (list, tuple)) else [given]
        in_memory = [isinstance(item, (torch.Tensor, Image.Image)) for item in items]
        if not any(in_memory):
            names = [str(item) for item in items]
        else:  # the run reads no file for them: the config names what it was given
            pictures[key] = [
                _as_tensor(item) if memory else images.load_image(samples.resolve_image(str(item)))
                for item, memory in zip(items, in_memory)
            ]
            names = [
                f"<in-memory {type(item).__name__}>" if memory else str(item) for item, memory in zip(items, in_memory)
            ]
            pictures[key] = pictures[key] if isinstance(given, (list, tuple)) else pictures[key][0]
        value = names if isinstance(given, (list, tuple)) else names[0]
        named.append(f"{key}={override_value(value)}")
    cfg, choices = compose_with_choices(*named, *overrides, **values)
    return run(cfg, run_dir, choices=choices, pictures=pictures)


def stylize(content, style, *overrides: str, **values: Any) -> Image.Image:
    """transfer() that returns the picture as a PIL image (what `stylelab` writes as final.png)."""
    result = transfer(content, style, *overrides, **values)
    if result.stopped:
        warnings.warn(result.stopped, stacklevel=2)
    return images.to_pil(result.image)

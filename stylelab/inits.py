"""Where the optimisation starts: each init takes the content and style images (1, 3, H, W) and the seed
and returns the initial image at the content's size. A config option names one with `_partial_: true`; its
keyword parameters with defaults are the option's settings (init.path)."""

from __future__ import annotations

from typing import Literal

import torch

from stylelab.errors import StyleLabError
from stylelab.io import images, samples


def noise(content: torch.Tensor, style: torch.Tensor, *, seed: int) -> torch.Tensor:
    """White noise, uniform in [0, 1] (the paper's start)."""
    gen = torch.Generator().manual_seed(seed)  # on the CPU, so every device starts from the same image
    return torch.rand(content.shape, generator=gen).to(content.device)


def from_content(content: torch.Tensor, style: torch.Tensor, *, seed: int) -> torch.Tensor:
    return content.clone()


def from_style(content: torch.Tensor, style: torch.Tensor, *, seed: int) -> torch.Tensor:
    return style.clone()


def from_file(content: torch.Tensor, style: torch.Tensor, *, seed: int, path: str | None = None) -> torch.Tensor:
    """An image file of the user's, resized to the content's size."""
    if not path:
        raise StyleLabError("init=image needs init.path=<an image file>")
    picture = images.load_image(samples.resolve_image(path))
    return images.resize_to(picture, tuple(content.shape[-2:]))[None].to(content.device)


def warped(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    seed: int,
    first: Literal["content", "noise"] = "content",
    disoccluded: Literal["first", "warped"] = "first",
) -> torch.Tensor:
    """A clip's start (Ruder et al. 2016): its frames after the first start from the previous stylised frame
    warped by the optical flow, which stylelab.video hands over in place of this function; the first frame,
    and an image, start from `first`: the photo (content) or white noise. Where the flow cannot be trusted
    (Ruder et al.'s c = 0: disocclusions, motion boundaries) a later frame starts as the first does
    (disoccluded=first), or from the warped frame there too (disoccluded=warped, the paper's: what the flow drags
    in, e.g. a copy of an object that moved away, stays until the steps paint it over)."""
    return from_content(content, style, seed=seed) if first == "content" else noise(content, style, seed=seed)

"""What a run reads, and the images and targets of each of its levels.

`read_pictures` reads every picture the run needs (content, styles, masks), once, at full size. `prepare` makes
one level: the content and styles at the level's size, on the device, and every term's target set from
their responses, as the objective says each term compares against the content, the style or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stylelab.build import Inputs, Level
from stylelab.controls import masks as masking
from stylelab.controls.colour import Colour
from stylelab.errors import NotDownloaded, StyleLabError
from stylelab.io import images, samples
from stylelab.losses.base import IMAGE, Objective


@dataclass
class Pictures:
    """The run's inputs as read, at full size, (3, H, W) in [0, 1]."""

    original: torch.Tensor  # the content as read; colour.finish takes its chroma
    content: torch.Tensor  # the content as the optimisation sees it (colour.prepare applied)
    styles: list[torch.Tensor]  # as the optimisation sees them
    content_masks: list[torch.Tensor] | None  # (1, 1, H, W) per region
    style_masks: list[torch.Tensor] | None  # per region, on its style image

    @property
    def masks(self) -> list[torch.Tensor]:
        return [*(self.content_masks or []), *(self.style_masks or [])]

    def size_of(self, size: int) -> tuple[int, int]:
        """(h, w) of the content at a level's longest side (as images.resize_longest makes it)."""
        height, width = self.content.shape[-2:]
        scale = size / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class LevelImages:
    """A level's images on the device, (1, 3, h, w): what the optimisation sees."""

    content: torch.Tensor
    styles: list[torch.Tensor]  # as used: recoloured, at style_scale


def _pictures(specs: list[str], given) -> list[torch.Tensor]:
    """(3, H, W) each, from in-memory pictures the API was handed, else read from the paths or sample names."""
    if given is not None:
        return list(given) if isinstance(given, (list, tuple)) else [given]
    return [images.load_image(samples.resolve_image(spec)) for spec in specs]


def _masks(specs: list[str], soft: bool, what: str) -> list[torch.Tensor]:
    out = []
    for spec in specs:
        try:
            out.append(masking.read_mask(spec, soft=soft))
        except StyleLabError as exc:
            raise StyleLabError(f"{what}: {exc}") from None
        if not out[-1].max() > 0:
            raise StyleLabError(
                f"{what}: mask {spec} is black everywhere, so its region is empty (a mask is white where its region is)"
            )
    return out


def _same_shape(masks: list[torch.Tensor], pictures: list[torch.Tensor], specs: list[str], what: str) -> None:
    """A mask is resized to its image, so it must have the image's proportions (to 1%)."""
    for mask, picture, spec in zip(masks, pictures, specs):
        (mh, mw), (ph, pw) = mask.shape[-2:], picture.shape[-2:]
        if abs(mw / mh - pw / ph) > 0.01 * (pw / ph):
            raise StyleLabError(
                f"mask {spec} is {mw}x{mh} but {what} is {pw}x{ph}: a mask must have the "
                f"proportions of the image it masks"
            )


def fetch(inputs: Inputs, model, given: dict | None = None, progress: bool = True) -> None:
    """Download every sample picture and weights file the run needs and has not got, all of them first: offline,
    the one NotDownloaded names every missing file. `given`: the pictures passed in memory (not fetched)."""
    given = given or {}
    wanted = [*([] if "content" in given else [inputs.content]), *([] if "style" in given else inputs.styles)]
    missing = samples.fetch_all(wanted, progress=progress) + model.download(progress=progress)
    if missing:
        raise NotDownloaded(missing)


def read_pictures(inputs: Inputs, colour: Colour, given: dict | None = None) -> Pictures:
    """Every picture the run reads, checked against each other; the colour control prepares them.

    given: {"content": (3, H, W), "style": (3, H, W) or a list of them} used instead of reading the
    config's paths (the Python API's in-memory images).
    """
    given = given or {}
    original = _pictures([inputs.content], given.get("content"))[0]  # (3, H, W)
    styles = _pictures(inputs.styles, given.get("style"))
    content_masks = style_masks = None
    if inputs.content_masks is not None:
        content_masks = _masks(inputs.content_masks, inputs.soft, "mask.content")
        _same_shape(content_masks, [original] * len(content_masks), inputs.content_masks, "the content")
        if inputs.style_masks is not None:
            style_masks = _masks(inputs.style_masks, inputs.soft, "mask.style")
            regions = [styles[r if len(styles) > 1 else 0] for r in range(len(style_masks))]
            _same_shape(style_masks, regions, inputs.style_masks, "its style image")
    content, styles = colour.prepare(original, styles)
    return Pictures(original, content, styles, content_masks, style_masks)


def prepare(
    level: Level, pictures: Pictures, network, objective: Objective, model, inputs: Inputs, device: torch.device
) -> LevelImages:
    """The images of a level of `level.size` px on the device, with every term's target set at that size."""
    content = images.resize_longest(pictures.content, level.size)  # (3, h, w)
    h, w = content.shape[-2:]
    smallest = max(model.min_input_side(objective.layers), *(term.min_side for term in objective.terms.values()))
    if min(h, w) < smallest:
        raise StyleLabError(
            f"the content image becomes {w}x{h} at {level.size} px; the layers chosen need both "
            f"sides >= {smallest} pixels"
        )
    # the paper compares Grams over the same number of positions, so by default the style takes the
    # content's exact size; style_scale shrinks or grows it (its Gram is then rescaled to M, see GramLoss)
    scale = inputs.style_scale
    hw = (h, w) if scale == 1 else (max(1, round(h * scale)), max(1, round(w * scale)))
    if min(hw) < smallest:
        raise StyleLabError(
            f"at style_scale={scale} the style becomes {hw[1]}x{hw[0]}; the layers chosen need both "
            f"sides >= {smallest} pixels"
        )
    styles = [images.resize_to(style, hw)[None].to(device) for style in pictures.styles]
    content = content[None].to(device)
    with torch.no_grad():
        # every term that compares against the content reads the same responses: the network runs once
        of_content = {**network(content), IMAGE: content}
        wanted = "style" in objective.targets.values()  # and the styles' once, if any term compares with them
        of_styles = [{**network(style), IMAGE: style} for style in styles] if wanted else []
        for name, term in objective.terms.items():
            if objective.targets[name] == "content":
                term.set_target(of_content)
            elif objective.targets[name] == "style":
                _set_style_target(term, of_styles, pictures, inputs, model, (h, w), hw, device)
    return LevelImages(content, styles)


def _set_style_target(
    term, responses: list[dict], pictures: Pictures, inputs: Inputs, model, hw_content, hw_style, device
) -> None:
    """A style term's targets: the styles blended, or with spatial control one style per region (the term
    sets them: Term.set_targets)."""
    if pictures.content_masks is None:
        term.set_targets(responses, inputs.blend)
        return
    layers = list(term.layers)
    guides = [
        masking.guides(
            masking.resize_mask(m, hw_content, soft=inputs.soft).to(device), layers, model, inputs.propagation
        )
        for m in pictures.content_masks
    ]
    within = None
    if pictures.style_masks is not None:
        within = [
            masking.guides(
                masking.resize_mask(m, hw_style, soft=inputs.soft).to(device), layers, model, inputs.propagation
            )
            for m in pictures.style_masks
        ]
    term.set_targets(responses, guides=guides, style_guides=within)

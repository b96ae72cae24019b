"""What a clip's run will do: its settings (the config group video), its tasks (pass, frame) and their steps, where
each task writes its frame, and what the temporal term's weight is worth. No file is read here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from stylelab.build import Level
from stylelab.errors import StyleLabError

FRAMES = "frames"  # the last pass's frames, in the run folder
PASSES = "passes"  # the earlier passes' frames, in passes/<pass>/


class Video:
    """A clip's settings (the config group video).

    flow          the optical flow (the group video/flow)
    long_term     the earlier frames i - j the temporal term holds frame i to (the paper's short-term loss: [1],
                  its long-term: [1, 10, 20, 40])
    later_steps   steps for every frame but the first (null: steps), which start near their result
    passes        Ruder et al.'s multi-pass algorithm: after the first pass (forward), passes - 1 more, backward,
                  forward, ..., each frame started from blend * c * (the neighbour just made, warped) +
                  (1 - blend * c) * (its own last pass) and held to that neighbour; later_steps each
    fps           the frame rate of video.mp4 (null: the clip's; 25 for a folder of frames)
    """

    def __init__(
        self,
        flow: Any = None,
        long_term: tuple[int, ...] = (1,),
        later_steps: int | None = None,
        passes: int = 1,
        blend: float = 0.5,
        fps: float | None = None,
    ):
        if flow is None:
            raise StyleLabError("video.flow must name a flow method: video/flow=dis, deepflow or raft")
        js = [int(j) for j in long_term]
        if not js or any(j < 1 for j in js) or sorted(set(js)) != js:
            raise StyleLabError(f"video.long_term must be frame distances >= 1 in increasing order, not {list(js)}")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise StyleLabError(f"video.fps must be a number > 0, not {fps}")
        if later_steps is not None and later_steps < 0:
            raise StyleLabError(f"video.later_steps must be >= 0, not {later_steps}")
        if passes < 1:
            raise StyleLabError(f"video.passes must be >= 1, not {passes}")
        if not 0 <= blend <= 1:
            raise StyleLabError(f"video.blend must be between 0 and 1, not {blend}")
        self.flow, self.long_term, self.later_steps, self.fps = flow, js, later_steps, fps
        self.passes, self.blend = int(passes), float(blend)


def frame_levels(levels: list[Level], later_steps: int | None, i: int) -> list[Level]:
    """Frame i's levels: the run's for the first frame; for the others later_steps in all (null: the same), each
    level's share as in the run's schedule. A frame started from its warped predecessor is most of the way there
    (Ruder et al.'s code gives the first frame 2000 iterations and the others 1000)."""
    total = levels[-1].last
    if i == 0 or later_steps is None or later_steps == total:
        return list(levels)
    out, first = [], 0
    for k, level in enumerate(levels):
        n = (
            later_steps - first
            if k == len(levels) - 1
            else round((level.last - level.first) * later_steps / max(total, 1))
        )
        out.append(Level(level.size, first, first + n))
        first += n
    return out


def tasks(frames: int, passes: int) -> list[tuple[int, int]]:
    """(pass, frame) in the order they run: the first pass forward, then backward, forward, ... (Ruder et al.'s
    multi-pass algorithm)."""
    order = [range(frames) if p % 2 == 0 else range(frames - 1, -1, -1) for p in range(passes)]
    return [(p, i) for p in range(passes) for i in order[p]]


def written(folder: Path, passes: int, p: int, i: int) -> Path:
    """Where pass p writes frame i: the last pass into frames/, the others into passes/<p + 1>/."""
    return (folder / FRAMES if p == passes - 1 else folder / PASSES / str(p + 1)) / f"{i + 1:05d}.png"


def temporal_scale(objective, features: dict[str, torch.Tensor], photo: torch.Tensor) -> float:
    """What loss.temporal_weight = 1 weighs in the total: the objective's size over the temporal term's.

    The objective's size is sum_t weight_t * term_t(0) over the terms that compare with the content or the style,
    each scored for all-zero responses as large as `features` (the photo's); with the balance rule that is
    alpha content(0) + beta style(0) = 4 alpha content(0). The temporal term's size is mean(photo^2), its value for a
    frame as far from its warped predecessor as black is from the photo (1, 3, h, w). So the weight means the
    same whatever the network and its balance, whose losses differ by orders of magnitude (docs/video.md)."""
    zero = objective.at_zero(features, photo)
    size = sum(
        objective.weights[name] * sum(term.layers[layer] * value for layer, value in zero[name].items())
        for name, term in objective.terms.items()
        if objective.targets[name] in ("content", "style") and objective.weights[name]
    )
    return size / float(photo.pow(2).mean()) if size > 0 else 1.0

"""A clip, frame by frame, as Ruder, Dosovitskiy & Brox (GCPR 2016) stylise one: each frame is a run of
stylelab.loop (the same objective, network and optimizer as an image), started from the previous stylised frame
warped by the optical flow (init=warped) and held to the earlier stylised frames by the temporal term.

A run folder of a clip holds
    frames/00001.png ...   the stylised frames, each written (atomically) once its run is done (with
                           video.passes > 1: the last pass's; the others' in passes/<pass>/)
    video.mp4              the frames at the clip's frame rate, written at the end
    flows/<method>/        the optical flows, computed once (a sweep's jobs share their sweep folder's)
    input/                 a video file's frames as decoded (a folder of frames is read where it is)
    clip.json              what a resumed run must match, and the weights the first frame's balance chose
    TensorBoard events     per frame (frame/ tags, at the frame's number): its losses, its picture, its temporal
                           error; and every step of every frame on one axis, frame after frame

A stopped run resumes at its first unwritten frame, which starts over: the frames before it are read back from
their PNGs, which an uninterrupted run reads back too, so both make the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from stylelab import backend, inits, levels, loop, measures, memory
from stylelab.build import Level, Parts
from stylelab.errors import StyleLabError
from stylelab.io import folders, images, lock
from stylelab.io.atomic import write_atomic
from stylelab.losses import balance as balancing
from stylelab.losses.base import Evaluation
from stylelab.observers import Observer, TensorBoard
from stylelab.video import clips, plan
from stylelab.video import flow as flows
from stylelab.video.plan import FRAMES
from stylelab.video.warp import long_term, warp

log = logging.getLogger("stylelab")
VIDEO = "video.mp4"


@dataclass
class ClipResult:
    frames: list[Path]  # the stylised frames written, in order
    video_path: Path | None  # video.mp4, once every frame is done
    steps_done: int  # over all frames this process ran
    seconds: float  # optimisation time of the frames this process ran
    temporal_errors: list[float]  # per frame after the first: measures.temporal_error with its predecessor
    final: Evaluation | None  # the losses of the last frame run
    stopped: str | None = None
    interrupted: bool = False
    device: str = "cpu"
    per_frame: list[float] = field(default_factory=list)  # seconds of each frame this process ran
    losses: list[dict[str, float]] = field(default_factory=list)  # each frame's final losses (Evaluation.scalars)
    curves: list[dict] = field(default_factory=list)  # each frame's RunResult.curves: tag -> [(step, loss)]

    @property
    def temporal_error(self) -> float:
        return sum(self.temporal_errors) / len(self.temporal_errors) if self.temporal_errors else 0.0


class _Shifted(Observer):
    """The clip's TensorBoard told about one frame's run, its steps shifted to the clip's axis."""

    def __init__(self, tb: TensorBoard, offset: int):
        self.tb, self.offset = tb, offset

    def _level(self, level):
        return replace(level, first=level.first + self.offset, last=level.last + self.offset)

    def on_level(self, k, level, images, step):
        self.tb.on_level(k, self._level(level), images, step + self.offset)

    def on_losses(self, step, evaluation):
        self.tb.on_losses(step + self.offset, evaluation)

    def on_image(self, step, image):
        self.tb.on_image(step + self.offset, image)

    def on_level_end(self, k, level, step, evaluation, image):
        self.tb.on_level_end(k, self._level(level), step + self.offset, evaluation, image)


def _temporal_terms(parts: Parts) -> list[str]:
    return [name for name, target in parts.objective.targets.items() if target == "previous"]


def _fingerprint(parts: Parts, clip: clips.Clip) -> dict:
    return {
        **{key: value for key, value in parts.settings.items() if key not in ("content", "steps")},
        "steps": parts.levels[-1].last,
        "clip": f"{len(clip)} frames of {clip.size[1]}x{clip.size[0]} from {clip.source}",
        # the first and last frames' bytes: another clip under the same name (and size) is not this one
        "frames": hashlib.sha256(clip.paths[0].read_bytes() + clip.paths[-1].read_bytes()).hexdigest()[:16],
    }


def _state(folder: Path, parts: Parts, clip: clips.Clip, resume: bool) -> dict:
    """The clip's state (clip.json): a new one, or a resumed run's, checked against this run's settings."""
    path, expected = folder / folders.CLIP_STATE, _fingerprint(parts, clip)
    if not resume or not path.is_file():
        return {"fingerprint": expected, "balanced": {}, "temporal_scale": None}
    state = json.loads(path.read_text(encoding="utf-8"))
    found = state.get("fingerprint", {})
    for key in sorted(set(found) | set(expected)):
        if found.get(key) != expected.get(key):
            raise StyleLabError(
                f"cannot resume the clip in '{folder}': it was made with {key}={found.get(key)!r}, but this run "
                f"has {key}={expected.get(key)!r}"
            )
    return state


def _save_state(folder: Path, state: dict) -> None:
    text = json.dumps(state, indent=1, sort_keys=True)
    write_atomic(folder / folders.CLIP_STATE, lambda f: f.write(text.encode("utf-8")))


def run_clip(
    parts: Parts,
    folder: Path,
    *,
    flows_folder: Path | None = None,
    resume: bool = False,
    stop: Callable[[], str | None] | None = None,
    observers: Sequence[Observer] = (),
    notes: dict[str, str] | None = None,
) -> ClipResult:
    """Stylise the clip `parts.inputs.content` into `folder` (see the module's docstring); resume: go on at
    its first unwritten frame. flows_folder: where the flows are cached (default folder/flows)."""
    folder = Path(folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock.hold(folder)
    try:
        return _run_clip(parts, folder, flows_folder or folder / "flows", resume, stop, observers, notes)
    finally:
        lock.release(folder)
        if made and not any(p.name != lock.FILE for p in folder.iterdir()):  # refused before it wrote anything
            shutil.rmtree(folder, ignore_errors=True)


def _start(image: torch.Tensor) -> Callable:
    """An init that starts from `image` (1, 3, h, w), resized to the level's content."""
    return lambda content, style, *, seed: images.resize_to(image[0], tuple(content.shape[-2:]))[None].to(
        content.device
    )


@dataclass
class _ClipRun:
    """What a clip's run has read and decided before its first frame."""

    parts: Parts
    folder: Path
    clip: clips.Clip
    network_weights: Any  # loaded once, for every frame
    state: dict  # clip.json: the fingerprint, the first frame's balance, the temporal term's scale
    cache: flows.FlowCache
    photos: "_Photos"
    todo: list[tuple[int, int]]  # (pass, frame) in the order they run
    ladders: list[list[Level]]  # each task's levels
    offsets: list[int]  # each task's step 0 on the clip's axis (and one past the last)
    done: int  # the tasks already written (a resumed run)
    gamma: dict[str, float]  # the temporal terms' weights as given (loss.temporal_weight)

    def written(self, p: int, i: int) -> Path:
        return plan.written(self.folder, self.parts.video.passes, p, i)


def _open(parts: Parts, folder: Path, flows_folder: Path, resume: bool) -> _ClipRun:
    """The clip read, its memory checked, the network's weights loaded, and where a resumed run goes on."""
    video: plan.Video = parts.video
    clip = clips.open_clip(parts.inputs.content, folder, fps=video.fps)
    levels.fetch(parts.inputs, parts.model, {"content": None}, progress=parts.watch.progress)
    # before anything heavy, as for an image: a frame's run that cannot fit is refused (every frame is as large)
    first = levels.read_pictures(parts.inputs, parts.colour, {"content": clip.frame(0)})
    memory.for_run(parts, first, backend.resolve_device(parts.device))
    network_weights = parts.model.load(seed=parts.seed, progress=parts.watch.progress)
    state = _state(folder, parts, clip, resume)
    balancing.restore(parts.objective, state["balanced"])
    todo = plan.tasks(len(clip), video.passes)
    done = 0  # the tasks whose frame is written: a resumed run goes on with the next, which starts over
    while resume and done < len(todo) and plan.written(folder, video.passes, *todo[done]).is_file():
        done += 1
    if done:
        log.info(f"resuming the clip in {folder} at task {done + 1} of {len(todo)}")
    ladders = [plan.frame_levels(parts.levels, video.later_steps, 0 if task == (0, 0) else 1) for task in todo]
    # a task's step 0 on the clip's axis: one past the last step of the task before, so no two share a step
    offsets = [sum(ladder[-1].last + 1 for ladder in ladders[:k]) for k in range(len(todo) + 1)]
    photos = _Photos(clip, parts.levels[-1].size, max(video.long_term))
    gamma = {name: parts.objective.weights[name] for name in _temporal_terms(parts)}
    cache = flows.FlowCache(flows_folder, video.flow)
    return _ClipRun(parts, folder, clip, network_weights, state, cache, photos, todo, ladders, offsets, done, gamma)


def _task_parts(run: _ClipRun, k: int) -> Parts:
    """Task k's parts: its levels, the temporal terms' targets and weights, and its start."""
    parts, video, (p, i), photos = run.parts, run.parts.video, run.todo[k], run.photos
    # the frames this one is held to, as written (an uninterrupted run reads them back as a resumed one does)
    if p == 0:
        near = [(i - j, j) for j in video.long_term if i - j >= 0]
    else:
        n = i - 1 if p % 2 == 0 else i + 1  # the neighbour this pass has just made
        near = [(n, 1)] if 0 <= n < len(run.clip) else []
    pictures = [parts.colour.seen(images.load_image(run.written(p, m))[None]) for m, _ in near]  # (1, 3, h, w)
    warped = [warp(x, run.cache.flow(i, m, photos(i), photos(m))) for x, (m, _) in zip(pictures, near)]
    weights = long_term([run.cache.weights(i, m, photos(i), photos(m)) for m, _ in near])  # (1, h, w) each
    for name, gamma in run.gamma.items():
        parts.objective.terms[name].set_previous(warped, [c[None] for c in weights])
        # the first frame has no earlier one: its temporal term is 0 whatever its weight
        parts.objective.weights[name] = gamma * (run.state["temporal_scale"] or 1.0)
    frame_parts = replace(parts, levels=run.ladders[k])
    if p > 0:  # Ruder et al.'s blend: delta c of the warped neighbour, the rest this frame's last pass
        own = parts.colour.seen(images.load_image(run.written(p - 1, i))[None])
        mix = video.blend * weights[0][None] if near else torch.zeros_like(own[:, :1])  # (1, 1, h, w)
        return replace(frame_parts, init=_start(mix * (warped[0] if near else own) + (1 - mix) * own))
    if getattr(parts.init, "func", parts.init) is inits.warped and near and near[0][1] == 1:
        start = warped[0]
        if parts.init.keywords.get("disoccluded", "first") == "first":  # not where the flow is untrustworthy
            c = weights[0][None]  # (1, 1, h, w): frame i - 1 is the nearest, so its long-term weights are c
            start = c * start + (1 - c) * parts.init(parts.colour.seen(photos(i)[None]), None, seed=parts.seed)
        return replace(frame_parts, init=_start(start))
    return frame_parts


def _record(run: _ClipRun, k: int, frame: loop.RunResult, seconds: float, result: ClipResult, tb) -> None:
    """Task k is done: its frame written, the clip's state saved (after the first frame, with the weights the
    first frame's balance chose, which hold for the whole clip as the paper's fixed ones)."""
    parts, (p, i) = run.parts, run.todo[k]
    if k == 0:
        run.state["balanced"] = dict(frame.state.balanced) if frame.state else {}
        seen = parts.colour.seen(run.photos(0)[None])  # (1, 3, h, w)
        with torch.no_grad():
            network = parts.model.extractor(parts.objective.layers, run.network_weights, seen.device)
            run.state["temporal_scale"] = plan.temporal_scale(parts.objective, network(seen), seen)
    images.save_image(frame.image, run.written(p, i))
    _save_state(run.folder, run.state)
    result.per_frame.append(seconds)
    result.steps_done += frame.steps_done
    result.seconds += frame.seconds
    result.final, result.device = frame.final, frame.device
    result.losses.append(frame.final.scalars() if frame.final is not None else {})
    result.curves.append(frame.curves)
    if p == parts.video.passes - 1:
        _log_frame(tb, i, frame)


def _run_clip(parts, folder, flows_folder, resume, stop, observers, notes) -> ClipResult:
    run = _open(parts, folder, flows_folder, resume)
    # purge_step: TensorBoard drops what a stopped run logged of the frame it was in, which starts over
    watch, offsets, done = parts.watch, run.offsets, run.done
    tb = TensorBoard(
        folder,
        steps=offsets[-1] - 1,
        every=watch.log_every,
        image_every=watch.image_every,
        purge_step=offsets[done] or None,
    )
    if notes and not done:
        tb.notes(0, notes)
    result = ClipResult([], None, 0, 0.0, [], None)
    try:
        for k in range(done, len(run.todo)):
            p, i = run.todo[k]
            frame_parts = _task_parts(run, k)
            reason = stop() if stop is not None else None
            if reason:
                result.interrupted, result.stopped = True, f"{reason} before frame {i + 1} (pass {p + 1})"
                break
            begin = time.perf_counter()
            observing = [_Shifted(tb, offsets[k]), *observers]
            frame = loop.run(
                frame_parts,
                pictures={"content": run.clip.frame(i)},
                stop=stop,
                observers=observing,
                weights=run.network_weights,
            )
            if frame.interrupted:
                result.interrupted, result.stopped = True, f"{frame.stopped} of frame {i + 1} (pass {p + 1})"
                break
            _record(run, k, frame, time.perf_counter() - begin, result, tb)
        _close(run, result, tb)
    finally:
        tb.close()
    return result


def _close(run: _ClipRun, result: ClipResult, tb: TensorBoard) -> None:
    """Once every frame is written: their temporal errors, video.mp4 and the HParams record."""
    out, n = run.folder / FRAMES, len(run.clip)
    result.frames = [out / f"{i + 1:05d}.png" for i in range(n) if (out / f"{i + 1:05d}.png").is_file()]
    if len(result.frames) < n:
        return
    _temporal_errors(tb, result, run.cache, run.photos)
    result.video_path = clips.write_video(result.frames, run.folder / VIDEO, run.clip.fps)
    if result.final is not None:
        metrics = {"summary/temporal_error": result.temporal_error}
        tb.hparams(run.parts.settings, result.final, run.offsets[-1] - 1, metrics)


class _Photos:
    """The clip's photo frames at the picture's size, (3, h, w), read when asked; a long clip keeps only the
    ones the temporal terms still need."""

    def __init__(self, clip: clips.Clip, size: int, reach: int):
        self.clip, self.size, self.reach, self.kept = clip, size, reach, {}

    def __call__(self, i: int) -> torch.Tensor:
        if i not in self.kept:
            self.kept[i] = images.resize_longest(self.clip.frame(i), self.size)
            for old in [k for k in self.kept if abs(k - i) > self.reach]:
                del self.kept[old]
        return self.kept[i]


def _log_frame(tb: TensorBoard, i: int, frame: loop.RunResult) -> None:
    """Frame i's losses and picture (its last pass's) at step i of the frame/ tags."""
    with tb.io():
        if frame.final is not None:
            for tag, value in frame.final.scalars().items():
                tb.writer.add_scalar(f"frame/{tag}", value, i)
        tb.writer.add_image("frame/picture", frame.image[0].clamp(0, 1), i)


def _temporal_errors(tb: TensorBoard, result: ClipResult, cache, photos) -> None:
    """Each frame's temporal error against the one before (measures.temporal_error on the frames as written, where
    the flow is trustworthy), at step i of frame/temporal_error."""
    pictures = [images.load_image(path) for path in result.frames]
    for i in range(1, len(pictures)):
        error = measures.temporal_error(
            pictures[i - 1 : i + 1],
            [cache.flow(i, i - 1, photos(i), photos(i - 1))],
            [cache.weights(i, i - 1, photos(i), photos(i - 1))],
        )
        result.temporal_errors.append(error)
        with tb.io():
            tb.writer.add_scalar("frame/temporal_error", error, i)

"""Reading and writing clips. A clip is a list of frame image files: a folder of images is used as it is, and a
video file is decoded once (with PyAV) into PNG frames in the run folder, so a resumed run never decodes again
and every later step reads frames the same way, one (3, H, W) image at a time, never the whole clip in memory."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image

from stylelab.choices import VIDEO_SUFFIXES
from stylelab.errors import StyleLabError
from stylelab.io.atomic import check_folder, existing_ancestor, read_reason, remove_quietly, write_atomic
from stylelab.io.images import load_image

try:
    import av
except ImportError:  # PyAV is optional: a folder of frames works without it
    av = None

DEFAULT_FPS = 25.0  # a folder of frames carries no rate; 25 is the PAL rate most tools assume
MARKER = ".complete"  # written last into <run folder>/input: its presence means every frame is there
NEEDS_PYAV = "reading a video file needs PyAV: pip install av"
# What PyAV and the OS raise on a missing, broken or truncated file (FFmpegError covers InvalidDataError).
_AV_ERRORS = (OSError, ValueError, EOFError) + ((av.error.FFmpegError,) if av else ())
# Pillow raises these (besides OSError) on broken image data, DecompressionBombError on a huge header.
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
_SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that turn the picture by 90 degrees: load_image swaps W and H


@dataclass
class Clip:
    """Frames on disk, in order, all of one size; `frame(i)` reads one, so a long clip never fills memory."""

    paths: list[Path]  # one image file per frame, in order
    fps: float
    size: tuple[int, int]  # (H, W) of every frame
    source: str  # what the user gave

    def __len__(self) -> int:
        return len(self.paths)

    def frame(self, i: int) -> torch.Tensor:
        """Frame i (0-based) as a (3, H, W) float32 RGB tensor in [0, 1]."""
        return load_image(self.paths[i])


def open_clip(spec: str | os.PathLike, folder: Path, fps: float | None = None) -> Clip:
    """The clip `spec` names: a folder of images (frames in name order, numbers compared as numbers) or a video
    file, decoded into folder/input/00001.png... unless a finished earlier decode of the same file is there.

    Before anything is written, the disk of `folder` must have room for the frames twice over (the frames in,
    the stylised frames out): a StyleLabError says how much is needed and how much is free otherwise."""
    source = os.fspath(spec)
    path = Path(source)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise StyleLabError(f"the frame rate of '{source}' must be a positive number, got fps={fps}")
    if source and path.is_dir():
        paths, size = _read_folder(path)
        _check_room(source, Path(folder), len(paths), size, copies=1)  # frames in are the user's; out: one copy
        return Clip(paths, float(fps or DEFAULT_FPS), size, source)
    if source.endswith(("/", os.sep)) or path.suffix.lower() not in VIDEO_SUFFIXES:
        what = "no such folder" if not path.exists() else "it is neither a folder of images nor a video file"
        raise StyleLabError(f"cannot read the clip '{source}': {what}")
    return _open_video(path, source, Path(folder) / "input", fps)


def _natural_key(name: str) -> tuple[list[str | int], str]:
    # ASCII digits only: str.isdigit() accepts '²', which int() refuses. Splitting on a group keeps the text
    # parts at even places and the numbers at odd ones, so two keys never compare a str with an int.
    parts = re.split(r"([0-9]+)", name)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


def _read_folder(folder: Path) -> tuple[list[Path], tuple[int, int]]:
    """The folder's images in name order and their one (H, W); from the headers only, no pixel is decoded."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    except OSError as exc:
        raise StyleLabError(f"cannot read the folder '{folder}': {read_reason(exc)}") from None
    if not entries:
        raise StyleLabError(f"the folder '{folder}' holds no frames: a clip folder needs one image file per frame")
    paths = sorted(entries, key=lambda p: _natural_key(p.name))
    first, first_size = paths[0], _image_size(paths[0], folder)
    for path in paths[1:]:
        size = _image_size(path, folder)
        if size != first_size:
            raise StyleLabError(
                f"frame '{path.name}' is {_wxh(size)} but '{first.name}' is {_wxh(first_size)}: "
                "every frame of a clip must have one size"
            )
    return paths, first_size


def _image_size(path: Path, folder: Path) -> tuple[int, int]:
    """(H, W) as load_image will return it, i.e. after the EXIF orientation is applied."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            sideways = im.getexif().get(ExifTags.Base.Orientation) in _SIDEWAYS
    except _IMAGE_ERRORS as exc:
        raise StyleLabError(f"'{path.name}' in {folder} is not an image Pillow can read: {read_reason(exc)}") from None
    return (width, height) if sideways else (height, width)


# ---------------------------------------------------------------- a video file


def _open_video(path: Path, source: str, input_dir: Path, fps: float | None) -> Clip:
    if av is None:
        raise StyleLabError(NEEDS_PYAV)
    if not path.is_file():
        raise StyleLabError(f"cannot read video '{source}': {'no such file' if not path.exists() else 'not a file'}")
    done = _finished_decode(input_dir, path)
    if done is None:
        done = _decode(path, source, input_dir)
    paths, rate, size = done
    return Clip(paths, float(fps or rate), size, source)


def _fingerprint(path: Path) -> dict:
    # Size and mtime of the source: a different file under the same name is decoded again, not reused.
    stat = path.stat()
    return {"source_bytes": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def _frame_paths(input_dir: Path, count: int) -> list[Path]:
    return [input_dir / f"{i:05d}.png" for i in range(1, count + 1)]


def _finished_decode(input_dir: Path, path: Path) -> tuple[list[Path], float, tuple[int, int]] | None:
    """An earlier decode of this very file, complete (its marker is there and every frame it lists), or None."""
    try:
        marker = json.loads((input_dir / MARKER).read_text(encoding="utf-8"))
        if any(marker[k] != v for k, v in _fingerprint(path).items()):
            return None
        paths = _frame_paths(input_dir, int(marker["frames"]))
        size = (int(marker["height"]), int(marker["width"]))
        rate = float(marker["fps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no marker or an unreadable one: the decode never finished
    if not paths or not all(p.is_file() for p in paths):
        return None
    return paths, rate, size


def _decode(path: Path, source: str, input_dir: Path) -> tuple[list[Path], float, tuple[int, int]]:
    """Decode every frame into input_dir as RGB PNGs, each written atomically, then the marker. On any failure
    the frames written so far are removed, so no half-decoded folder is left (and none could pass as finished)."""
    _clear(input_dir)
    written: list[Path] = []
    try:
        # "file:" keeps FFmpeg from reading a name such as "concat:a.mp4|b.mp4" or "http:x.mp4" as a protocol.
        with av.open(f"file:{path.absolute()}") as container:
            if not container.streams.video:
                raise StyleLabError(f"video '{source}' has no video stream (only sound or other data)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # decode with every core: the frames are read in order anyway
            rate = _stream_rate(stream)
            height, width = stream.codec_context.height, stream.codec_context.width
            _check_room(source, input_dir.parent, _estimate_frames(container, stream, rate), (height, width), 2)
            coded, turn = None, 0
            for frame in container.decode(stream):
                if coded is None:  # the first frame fixes the size (and the turn) of the whole clip
                    coded, turn = (frame.height, frame.width), _quarter_turns(frame)
                # (H, W, 3) uint8; a stream that changes size midway is scaled back to the first frame's size
                pixels = frame.to_ndarray(format="rgb24", width=coded[1], height=coded[0])
                picture = Image.fromarray(np.ascontiguousarray(np.rot90(pixels, turn)))
                target = input_dir / f"{len(written) + 1:05d}.png"
                write_atomic(target, lambda f, picture=picture: picture.save(f, format="PNG"))
                written.append(target)
        if not written:
            raise StyleLabError(f"video '{source}' has no frames")
        size = (coded[1], coded[0]) if turn % 2 else coded
        marker = {"frames": len(written), "fps": rate, "height": size[0], "width": size[1], **_fingerprint(path)}
        write_atomic(input_dir / MARKER, lambda f: f.write(json.dumps(marker, indent=1).encode("utf-8")))
    except BaseException as exc:
        for frame_path in written:
            remove_quietly(frame_path)
        with contextlib.suppress(OSError):
            input_dir.rmdir()  # only if empty: files the user put there stay
        if isinstance(exc, _AV_ERRORS):
            raise StyleLabError(f"cannot read video '{source}': {_av_reason(exc)}") from None
        raise
    return written, rate, size


def _clear(input_dir: Path) -> None:
    """Remove what an unfinished or outdated decode left: its marker first, then its frames and temp files."""
    remove_quietly(input_dir / MARKER)
    if input_dir.is_dir():
        for p in input_dir.iterdir():
            if re.fullmatch(r"[0-9]+\.png|\..*\.tmp", p.name):
                remove_quietly(p)


def _quarter_turns(frame) -> int:
    """How many quarter turns counter-clockwise show the frame upright (phones store portrait clips sideways
    with a display matrix; players, and FFmpeg's command line, turn them; PyAV leaves that to us)."""
    rotation = getattr(frame, "rotation", 0) or 0
    return round(rotation / 90) % 4


def _stream_rate(stream) -> float:
    """Frames per second: the average rate, or what FFmpeg guesses, or the default when a stream says nothing."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return DEFAULT_FPS


def _estimate_frames(container, stream, rate: float) -> int:
    """The frame count from the header, or its duration times its rate; 0 when neither is known."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return math.ceil(float(stream.duration * stream.time_base) * rate)
    if container.duration:
        return math.ceil(container.duration / av.time_base * rate)
    return 0


def _av_reason(exc: BaseException, writing: bool = False) -> str:
    """FFmpeg's own words ("invalid data found when processing input"), without its error number and path."""
    strerror = getattr(exc, "strerror", None)
    if av is not None and isinstance(exc, av.error.FFmpegError) and not isinstance(exc, FileNotFoundError):
        if strerror:
            return strerror[0].lower() + strerror[1:]
    return read_reason(exc, writing=writing)


def _check_room(source: str, folder: Path, frames: int, size: tuple[int, int], copies: int) -> None:
    """That `folder` can be written into and its disk holds `copies` raw RGB copies of every frame (PNG is
    usually smaller: the estimate errs on the safe side)."""
    check_folder(folder, 0, "run folder")
    height, width = size
    needed = frames * height * width * 3 * copies
    free = shutil.disk_usage(existing_ancestor(folder)).free
    if free < needed:
        raise StyleLabError(
            f"the clip '{source}' has {frames} frames of {width}x{height}; writing them needs about {_mb(needed)} "
            f"and the disk of '{folder}' has {_mb(free)} free"
        )


def _mb(n: float) -> str:
    """Bytes as a person reads them: a tiny test clip in kB, a long one in GB."""
    if n < 1e6:
        return f"{n / 1e3:.0f} kB"
    if n < 10e9:
        return f"{n / 1e6:.1f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"
    return f"{n / 1e9:.0f} GB"


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


# ---------------------------------------------------------------- writing


def write_video(paths: list[Path], path: Path, fps: float) -> Path:
    """Write the frames as an H.264 MP4 (libx264, yuv420p, crf 18: visually lossless, played everywhere) at `fps`,
    atomically: encoded under a temp name in the same folder and renamed at the end, nothing left on error.

    yuv420p stores colour at half resolution and so needs even sides: a frame with an odd width or height is
    padded by one pixel on the right or at the bottom, repeating the edge, so the video may be one pixel
    wider or taller than the frames."""
    if av is None:
        raise StyleLabError(NEEDS_PYAV)
    path = Path(path)
    if not paths:
        raise StyleLabError(f"cannot write the video '{path}': there are no frames")
    if not (math.isfinite(fps) and fps > 0):
        raise StyleLabError(f"cannot write the video '{path}': fps must be a positive number, got {fps}")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _encode(paths, tmp, fps)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, _AV_ERRORS):
            raise StyleLabError(f"cannot write '{path}': {_av_reason(exc, writing=True)}") from None
        raise
    return path


def _encode(paths: list[Path], tmp: Path, fps: float) -> None:
    # 1001 covers the NTSC rates exactly (30000/1001 from a decoded 29.97 fps clip comes back as itself).
    rate = Fraction(fps).limit_denominator(1001)
    first = None
    # faststart moves the index to the front once written, so browsers play the file before it has all loaded.
    with av.open(f"file:{tmp}", mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": "18"})
        stream.pix_fmt = "yuv420p"
        # Convert with, and tag, BT.709 (the sRGB primaries): untagged video leaves players to guess, and
        # most guess BT.709 for HD and BT.601 for SD, shifting the colours of one of the two.
        tags = av.video.reformatter
        context = stream.codec_context
        context.colorspace, context.color_range = tags.Colorspace.ITU709, tags.ColorRange.MPEG
        context.color_primaries, context.color_trc = tags.ColorPrimaries.BT709, tags.ColorTrc.BT709
        for i, frame_path in enumerate(paths):
            pixels = _frame_pixels(frame_path)  # (H, W, 3) uint8
            if first is None:
                first = frame_path, pixels.shape[:2]
                stream.height, stream.width = (side + side % 2 for side in pixels.shape[:2])
            elif pixels.shape[:2] != first[1]:
                raise StyleLabError(
                    f"frame '{frame_path.name}' is {_wxh(pixels.shape[:2])} but '{first[0].name}' is "
                    f"{_wxh(first[1])}: every frame of a clip must have one size"
                )
            height, width = pixels.shape[:2]
            pixels = np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=tags.Colorspace.ITU709, dst_color_range=tags.ColorRange.MPEG
            )
            frame.pts = i  # in units of 1/rate: one tick per frame
            frame.time_base = 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush the frames the encoder still holds


def _frame_pixels(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, read as load_image reads it (EXIF turn, alpha on white), rounded back to 8 bits."""
    image = load_image(path)  # (3, H, W) in [0, 1]
    return image.mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()

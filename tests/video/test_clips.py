"""stylelab.video.clips: clips from video files (decoded once, reused on resume) and from folders of frames,
writing H.264 MP4s, and every mistake as one sentence that leaves nothing half-written behind."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from conftest import REPO, written
from PIL import Image

from stylelab.choices import VIDEO_SUFFIXES, is_clip
from stylelab.errors import StyleLabError
from stylelab.io.images import save_image
from stylelab.video import clips
from stylelab.video.clips import Clip, open_clip, write_video

H, W = 24, 32
# qp 0 in yuv444p is lossless in YUV; what is left is rounding RGB -> 8-bit YUV -> RGB, at most a few steps
LOSSLESS_ISH = 3 / 255


def frame_pixels(i: int, h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8: red tells the frame's number, green a left-to-right ramp, blue a constant."""
    pixels = np.zeros((h, w, 3), np.uint8)
    pixels[..., 0] = 20 * i
    pixels[..., 1] = np.linspace(0, 255, w).round().astype(np.uint8)[None, :]
    pixels[..., 2] = 80
    return pixels


def encode(
    path: Path, frames: list[np.ndarray], rate: Fraction | int = 25, container_format: str | None = None
) -> Path:
    """A near-lossless H.264 clip of (h, w, 3) uint8 frames, made by PyAV itself."""
    h, w = frames[0].shape[:2] if frames else (H, W)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=rate, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv444p"
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        container.start_encoding()  # writes the header even when there is no frame (a no-op otherwise)
    return path


def decoded(path: Path) -> tuple[list[np.ndarray], av.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)], stream


def as_pixels(img: torch.Tensor) -> np.ndarray:
    return (img * 255).round().byte().permute(1, 2, 0).numpy()


def error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).max() / 255)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def clip_mp4(tmp_path) -> Path:
    return encode(tmp_path / "clip.mp4", [frame_pixels(i) for i in range(5)])


# ---------------------------------------------------------------- is_clip


def test_is_clip_by_suffix_or_folder_reading_nothing(tmp_path):
    (tmp_path / "frames").mkdir()
    assert is_clip(tmp_path / "frames") and is_clip(str(tmp_path / "frames"))
    assert is_clip("missing/") and is_clip("holiday.MP4") and is_clip(Path("a/b.webm"))
    assert not is_clip("x.gif")  # a GIF stays an image (its first frame), as it always was
    assert all(is_clip(f"clip{suffix.upper()}") for suffix in VIDEO_SUFFIXES)
    assert (
        not is_clip("")
        and not is_clip("painting.jpg")
        and not is_clip("starry_night")
        and not is_clip(tmp_path / "missing.png")
    )


# ---------------------------------------------------------------- a video file


def test_a_video_is_decoded_into_numbered_pngs_that_read_back_as_written(tmp_path, clip_mp4):
    clip = open_clip(clip_mp4, tmp_path / "run")
    assert isinstance(clip, Clip) and len(clip) == 5
    assert clip.fps == 25.0 and clip.size == (H, W) and clip.source == str(clip_mp4)
    assert [p.name for p in clip.paths] == [f"{i:05d}.png" for i in range(1, 6)]
    assert all(p.parent == tmp_path / "run" / "input" for p in clip.paths)
    for i in range(5):
        img = clip.frame(i)
        assert img.shape == (3, H, W) and img.dtype == torch.float32
        assert error(as_pixels(img), frame_pixels(i)) <= LOSSLESS_ISH
    marker = json.loads((tmp_path / "run" / "input" / ".complete").read_text())
    assert marker["frames"] == 5 and marker["fps"] == 25.0


def test_the_fps_argument_wins_and_an_ntsc_rate_is_kept_exactly(tmp_path):
    ntsc = encode(tmp_path / "ntsc.mov", [frame_pixels(i) for i in range(2)], rate=Fraction(30000, 1001))
    assert open_clip(ntsc, tmp_path / "run").fps == pytest.approx(30000 / 1001, abs=1e-9)
    assert open_clip(ntsc, tmp_path / "run", fps=12).fps == 12.0
    with pytest.raises(StyleLabError, match=r"frame rate of '.*ntsc\.mov' must be a positive number, got fps=0"):
        open_clip(ntsc, tmp_path / "run", fps=0)


def test_a_second_open_reuses_the_frames_without_decoding(tmp_path, clip_mp4, monkeypatch):
    first = open_clip(clip_mp4, tmp_path / "run")
    before = written(tmp_path / "run")
    monkeypatch.setattr(av, "open", lambda *a, **k: pytest.fail("decoded again"))
    again = open_clip(clip_mp4, tmp_path / "run")
    assert again == first and written(tmp_path / "run") == before


def test_an_interrupted_decode_leaves_no_frames_and_is_done_again(tmp_path, clip_mp4, monkeypatch):
    calls, real = [], clips.write_atomic

    def interrupted(path, write):  # Ctrl-C while the third frame is written
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(path, write)

    monkeypatch.setattr(clips, "write_atomic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        open_clip(clip_mp4, tmp_path / "run")
    assert listing(tmp_path / "run") == []
    monkeypatch.undo()
    assert len(open_clip(clip_mp4, tmp_path / "run")) == 5


def test_what_a_killed_decode_left_is_cleared_and_decoded_again(tmp_path, clip_mp4):
    folder = tmp_path / "run" / "input"
    folder.mkdir(parents=True)
    (folder / "00001.png").write_bytes(b"half")  # no marker: nothing here counts
    (folder / ".00002.png.0123abcd.tmp").write_bytes(b"half")
    (folder / "notes.txt").write_text("mine")
    clip = open_clip(clip_mp4, tmp_path / "run")
    assert error(as_pixels(clip.frame(0)), frame_pixels(0)) <= LOSSLESS_ISH
    assert listing(folder) == [
        ".complete",
        "00001.png",
        "00002.png",
        "00003.png",
        "00004.png",
        "00005.png",
        "notes.txt",
    ]


def test_a_marker_missing_frames_or_for_another_file_is_not_trusted(tmp_path, clip_mp4):
    open_clip(clip_mp4, tmp_path / "run")
    (tmp_path / "run" / "input" / "00004.png").unlink()
    assert len(open_clip(clip_mp4, tmp_path / "run")) == 5
    encode(clip_mp4, [frame_pixels(i, 16, 20) for i in (5, 6)])  # the same name, another clip
    clip = open_clip(clip_mp4, tmp_path / "run")
    assert len(clip) == 2 and clip.size == (16, 20)
    assert error(as_pixels(clip.frame(1)), frame_pixels(6, 16, 20)) <= LOSSLESS_ISH
    assert listing(tmp_path / "run" / "input") == [".complete", "00001.png", "00002.png"]


def test_a_phone_clip_stored_sideways_is_turned_upright(tmp_path):
    pixels = np.zeros((H, W, 3), np.uint8)
    pixels[:4, :4] = 255  # a white top-left corner
    path = encode(tmp_path / "phone.mp4", [pixels])
    data = bytearray(path.read_bytes())
    matrix = data.index(b"tkhd") + 4 + 40  # version 0 tkhd: the 3x3 display matrix comes after 40 bytes
    struct.pack_into(">9i", data, matrix, 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)  # 90° clockwise
    path.write_bytes(bytes(data))
    clip = open_clip(path, tmp_path / "run")
    assert clip.size == (W, H)
    white = as_pixels(clip.frame(0))[..., 0] > 128  # (W, H): the corner is now top-right
    assert white[:4, -4:].all() and white.sum() == 16


# ---------------------------------------------------------------- video mistakes


def read_fails(path: Path, run: Path, match: str) -> None:
    with pytest.raises(StyleLabError, match=match):
        open_clip(path, run)
    assert listing(run) == []  # nothing half-written, not even an empty input folder


def test_a_missing_broken_or_truncated_video_is_one_sentence(tmp_path, clip_mp4):
    run = tmp_path / "run"
    read_fails(tmp_path / "nope.mp4", run, r"^cannot read video '.*nope\.mp4': no such file$")
    (tmp_path / "notes.mp4").write_text("not a video")
    read_fails(tmp_path / "notes.mp4", run, r"^cannot read video '.*notes\.mp4': invalid data found")
    whole = clip_mp4.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    read_fails(tmp_path / "cut.mp4", run, r"^cannot read video '.*cut\.mp4': ")
    (tmp_path / "notes.txt").write_text("a file, neither a folder nor a video")
    read_fails(tmp_path / "notes.txt", run, r"^cannot read the clip '.*notes\.txt': it is neither a folder of images")
    read_fails(f"{tmp_path / 'gone'}/", run, r"^cannot read the clip '.*gone/': no such folder$")


def test_a_video_without_frames_or_without_a_picture(tmp_path):
    run = tmp_path / "run"
    empty = encode(tmp_path / "empty.avi", [], container_format="avi")  # a video stream, no frame in it
    read_fails(empty, run, r"^video '.*empty\.avi' has no frames$")
    sound = tmp_path / "sound.mp4"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    read_fails(sound, run, r"^video '.*sound\.mp4' has no video stream")


def test_a_clip_too_long_for_the_disk_is_refused_before_decoding(tmp_path, clip_mp4, monkeypatch):
    class Usage:
        free = 9_000  # 5 frames of 32x24, twice over, are 23 kB

    monkeypatch.setattr(clips.shutil, "disk_usage", lambda path: Usage)
    read_fails(
        clip_mp4,
        tmp_path / "run",
        r"^the clip '.*clip\.mp4' has 5 frames of 32x24; writing them needs about 23 kB and the disk of "
        r"'.*run' has 9 kB free$",
    )
    Usage.free = 23_040  # exactly enough
    assert len(open_clip(clip_mp4, tmp_path / "run")) == 5


def test_without_pyav_a_video_is_refused_and_a_folder_still_works(tmp_path, clip_mp4, monkeypatch):
    monkeypatch.setattr(clips, "av", None)
    read_fails(clip_mp4, tmp_path / "run", r"^reading a video file needs PyAV: pip install av$")
    with pytest.raises(StyleLabError, match="needs PyAV"):
        write_video([clip_mp4], tmp_path / "out.mp4", 25)
    (tmp_path / "frames").mkdir()
    save_image(torch.rand(3, H, W), tmp_path / "frames" / "a.png")
    assert len(open_clip(tmp_path / "frames", tmp_path / "run")) == 1


def test_the_module_imports_without_pyav():
    code = "import sys; sys.modules['av'] = None; from stylelab.video import clips; print(clips.av)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "None", out.stderr


# ---------------------------------------------------------------- a folder of frames


def test_a_folder_is_read_in_name_order_with_numbers_as_numbers(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for n in (10, 2, 1):
        Image.fromarray(frame_pixels(n)).save(frames / f"frame{n}.png")
    Image.fromarray(frame_pixels(3)).save(frames / "frame10b.jpg", quality=95)
    (frames / ".DS_Store").write_bytes(b"\0junk")  # hidden: skipped
    (frames / "sub").mkdir()  # a folder: skipped
    clip = open_clip(frames, tmp_path / "run")
    assert [p.name for p in clip.paths] == ["frame1.png", "frame2.png", "frame10.png", "frame10b.jpg"]
    assert clip.fps == 25.0 and clip.size == (H, W) and clip.source == str(frames)
    assert error(as_pixels(clip.frame(1)), frame_pixels(2)) == 0.0
    assert open_clip(str(frames), tmp_path / "run", fps=8).fps == 8.0
    assert not (tmp_path / "run").exists()  # a folder's frames are used where they are


def test_a_folder_frame_turned_by_exif_counts_with_its_turned_size(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(frame_pixels(0, W, H)).save(frames / "1.png")  # (32, 24): already upright
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown turned by 90 degrees
    Image.fromarray(frame_pixels(1)).save(frames / "2.jpg", exif=exif)
    clip = open_clip(frames, tmp_path / "run")
    assert clip.size == (W, H) and clip.frame(1).shape == (3, W, H)


def test_folder_mistakes_name_the_frame_and_the_reason(tmp_path):
    frames, run = tmp_path / "frames", tmp_path / "run"
    frames.mkdir()
    (frames / ".hidden.png").write_bytes(b"")
    read_fails(frames, run, r"^the folder '.*frames' holds no frames: a clip folder needs one image file per frame$")
    Image.new("RGB", (W, H)).save(frames / "f1.png")
    Image.new("RGB", (W + 1, H)).save(frames / "f2.png")
    read_fails(
        frames, run, r"^frame 'f2\.png' is 33x24 but 'f1\.png' is 32x24: every frame of a clip must have one size$"
    )
    (frames / "f2.png").unlink()
    (frames / "f3.txt").write_text("notes")
    read_fails(frames, run, r"^'f3\.txt' in .*frames is not an image Pillow can read: not an image format Pillow")


def test_a_folder_too_large_for_the_disk_is_refused(tmp_path, monkeypatch):
    (tmp_path / "frames").mkdir()
    for i in range(2):
        save_image(torch.rand(3, H, W), tmp_path / "frames" / f"{i}.png")
    monkeypatch.setattr(clips.shutil, "disk_usage", lambda path: SimpleNamespace(free=1_000))  # 2 frames: 4.6 kB
    read_fails(tmp_path / "frames", tmp_path / "run", r"^the clip '.*frames' has 2 frames of 32x24; writing them needs")


# ---------------------------------------------------------------- write_video


def pngs(folder: Path, count: int, h: int, w: int) -> list[Path]:
    ys, xs = torch.linspace(0, 1, h).view(h, 1).expand(h, w), torch.linspace(0, 1, w).view(1, w).expand(h, w)
    ramps = [torch.stack([xs, ys, torch.full((h, w), i / count)]) for i in range(count)]  # (3, h, w) each
    return [save_image(img, folder / f"{i + 1:05d}.png") for i, img in enumerate(ramps)]


def reference(paths: list[Path]) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def test_write_video_round_trip(tmp_path):
    paths = pngs(tmp_path / "out", 6, H, W)
    video = write_video(paths, tmp_path / "styled" / "clip.mp4", 12.5)
    assert video == tmp_path / "styled" / "clip.mp4" and listing(tmp_path / "styled") == ["clip.mp4"]
    frames, stream = decoded(video)
    assert len(frames) == 6 and frames[0].shape == (H, W, 3)
    assert stream.average_rate == Fraction(25, 2) and stream.codec_context.name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p" and stream.codec_context.colorspace == 1  # BT.709, tagged
    diffs = [np.abs(a.astype(float) - b) / 255 for a, b in zip(frames, reference(paths))]
    assert np.mean(diffs) < 0.02 and np.max(diffs) < 0.1  # crf 18 and colour at half resolution
    _, stream = decoded(write_video(paths[:2], tmp_path / "ntsc.mp4", 30000 / 1001))  # a decoded NTSC rate
    assert stream.average_rate == Fraction(30000, 1001)


def test_write_video_keeps_saturated_colours(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (200, 120, 40)]
    paths = [
        save_image(torch.tensor(c).view(3, 1, 1).expand(3, 16, 16) / 255, tmp_path / f"{i}.png")
        for i, c in enumerate(colours)
    ]
    frames, _ = decoded(write_video(paths, tmp_path / "c.mp4", 25))
    for frame, colour in zip(frames, colours):
        assert np.abs(frame[8, 8].astype(int) - colour).max() <= 4, (frame[8, 8], colour)  # one matrix both ways


def test_write_video_pads_odd_sides_by_repeating_the_edge(tmp_path):
    paths = pngs(tmp_path / "out", 3, 25, 33)
    frames, stream = decoded(write_video(paths, tmp_path / "odd.mp4", 25))
    assert len(frames) == 3 and (stream.height, stream.width) == (26, 34) and frames[0].shape == (26, 34, 3)
    for frame, ref in zip(frames, reference(paths)):
        assert np.abs(frame[:25, :33].astype(float) - ref).mean() / 255 < 0.02
        # the added column and row look like the edge they copy, not like black
        assert np.abs(frame[:, 33].astype(float) - frame[:, 32]).mean() / 255 < 0.03
        assert np.abs(frame[25].astype(float) - frame[24]).mean() / 255 < 0.03


def test_write_video_mistakes_leave_no_file_and_keep_an_older_video(tmp_path):
    paths = pngs(tmp_path / "out", 3, H, W)
    target = tmp_path / "styled" / "clip.mp4"
    target.parent.mkdir()
    target.write_bytes(b"the older video")
    (tmp_path / "out" / "00002.png").write_bytes(b"broken")
    with pytest.raises(StyleLabError, match=r"^cannot read image '.*00002\.png'"):
        write_video(paths, target, 25)
    Image.new("RGB", (W + 2, H)).save(paths[1])
    with pytest.raises(StyleLabError, match=r"^frame '00002\.png' is 34x24 but '00001\.png' is 32x24"):
        write_video(paths, target, 25)
    with pytest.raises(StyleLabError, match=r"^cannot write the video '.*clip\.mp4': there are no frames$"):
        write_video([], target, 25)
    with pytest.raises(StyleLabError, match=r"fps must be a positive number, got nan"):
        write_video(paths, target, float("nan"))
    assert listing(target.parent) == ["clip.mp4"] and target.read_bytes() == b"the older video"
    (tmp_path / "file").write_text("")
    with pytest.raises(StyleLabError, match=r"^cannot write '.*file/clip\.mp4': "):
        write_video(paths[:1], tmp_path / "file" / "clip.mp4", 25)

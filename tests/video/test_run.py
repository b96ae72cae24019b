"""A clip, frame by frame (stylelab.video.run), on random weights and tiny generated clips: what it writes, that
independent frames are single-image runs, that the temporal term and the warped start lower the flicker, and that a
stopped clip resumes to the same bytes."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch
from conftest import SHALLOW, events, hparams_of, make_image, run_cli

from stylelab import api, build, memory
from stylelab.errors import StyleLabError
from stylelab.io import images
from stylelab.video import flow as flows
from stylelab.video import plan
from stylelab.video import run as clip
from stylelab.video.synthetic import noise_photo, pan_and_zoom
from stylelab.video.warp import reliable

SMALL = ["model.weights=random", "image.size=48", "log.progress=false", *SHALLOW]


def pan(folder: Path, frames: int = 3, seed: int = 0) -> Path:
    """A photo-like picture panned 2 px right per frame: a folder of PNGs, 48x36."""
    folder.mkdir(parents=True, exist_ok=True)
    wide = make_image(folder.parent / f"wide{seed}.png", size=(48 + 2 * frames, 36), seed=seed)
    photo = images.load_image(wide)
    for i in range(frames):
        images.save_image(photo[:, :, 2 * i : 2 * i + 48][None], folder / f"frame{i + 1}.png")
    wide.unlink()
    return folder


def built(*overrides: str):
    cfg, choices = api.compose_with_choices(*overrides)
    return build.build(cfg, choices)


@pytest.fixture
def frames(tmp_path) -> Path:
    return pan(tmp_path / "frames")


@pytest.fixture
def style(tmp_path) -> Path:
    return make_image(tmp_path / "style.png", size=(40, 56), seed=2)


def test_a_folder_of_frames_becomes_stylised_frames_a_video_and_tensorboard(tmp_path, frames, style):
    cfg, choices = api.compose_with_choices(f"content={frames}", f"style={style}", "steps=3", *SMALL)
    assert choices["init"] == "warped"  # a clip's default: Ruder et al.'s start
    result = api.run(cfg, tmp_path / "run", choices=choices)
    written = sorted((tmp_path / "run" / clip.FRAMES).iterdir())
    assert [p.name for p in written] == ["00001.png", "00002.png", "00003.png"]
    assert all(images.load_image(p).shape == (3, 36, 48) for p in written)
    with av.open(str(result.video_path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert container.streams.video[0].average_rate == 25  # a folder of frames: 25 per second
    assert len(decoded) == 3 and decoded[0].shape == (36, 48, 3)
    assert len(result.temporal_errors) == 2 and result.steps_done == 9
    acc = events(tmp_path / "run")
    assert [e.step for e in acc.Scalars("frame/temporal_error")] == [1, 2]
    assert [e.value for e in acc.Scalars("frame/temporal_error")] == pytest.approx(result.temporal_errors)
    assert [e.step for e in acc.Scalars("frame/loss/temporal")] == [0, 1, 2]
    assert acc.Scalars("frame/loss/temporal")[0].value == 0  # the first frame has no earlier one
    assert acc.Scalars("frame/loss/temporal")[2].value > 0
    # every frame's steps one after the other (0-3, 4-7, 8-11): each frame's first and last, and every 10th
    assert sorted({e.step for e in acc.Scalars("loss/total")}) == [0, 3, 4, 7, 8, 10, 11]
    assert hparams_of(tmp_path / "run")["loss.temporal_weight"] == 0.25


def test_independent_frames_are_the_single_image_runs_of_each_frame(tmp_path, frames, style):
    overrides = [f"style={style}", "steps=3", *SMALL]
    cfg, choices = api.compose_with_choices(f"content={frames}", "loss.temporal_weight=0", "init=content", *overrides)
    api.run(cfg, tmp_path / "run", choices=choices)
    for k in (1, 3):
        alone = api.transfer(frames / f"frame{k}.png", style, *overrides, "init=content")
        written = images.load_image(tmp_path / "run" / clip.FRAMES / f"{k:05d}.png")
        assert torch.equal(written, images.load_image(images.save_image(alone.image, tmp_path / f"alone{k}.png")))


def test_the_warped_start_and_the_temporal_term_lower_the_temporal_error(tmp_path, style):
    frames = pan(tmp_path / "frames", frames=3, seed=5)
    common = [f"content={frames}", f"style={style}", "steps=6", *SMALL]
    independent = api.run(
        api.compose("loss.temporal_weight=0", "init=noise", *common), tmp_path / "independent"
    ).temporal_error
    ruder = api.run(api.compose("loss.temporal_weight=10", *common), tmp_path / "ruder").temporal_error
    assert ruder < 0.5 * independent


def test_a_stopped_clip_resumes_at_its_unfinished_frame_to_the_same_bytes(tmp_path, frames, style):
    overrides = [f"content={frames}", f"style={style}", "steps=3", *SMALL]
    clip.run_clip(built(*overrides), tmp_path / "whole")
    asked = iter(range(10**6))
    stopped = clip.run_clip(built(*overrides), tmp_path / "cut", stop=lambda: "SIGTERM" if next(asked) >= 6 else None)
    assert stopped.interrupted and len(stopped.frames) == 1 and stopped.video_path is None
    assert not (tmp_path / "cut" / clip.FRAMES / "00002.png").exists()  # the frame it was in starts over
    resumed = clip.run_clip(built(*overrides), tmp_path / "cut", resume=True)
    assert len(resumed.frames) == 3 and resumed.steps_done == 6  # frames 2 and 3
    for k in (1, 2, 3):
        name = f"{k:05d}.png"
        assert (tmp_path / "whole" / clip.FRAMES / name).read_bytes() == (
            tmp_path / "cut" / clip.FRAMES / name
        ).read_bytes()


def test_a_resumed_clip_must_have_the_settings_it_was_made_with(tmp_path, frames, style):
    overrides = [f"content={frames}", f"style={style}", *SMALL]
    asked = iter(range(10**6))
    clip.run_clip(built(*overrides, "steps=2"), tmp_path / "run", stop=lambda: "SIGTERM" if next(asked) >= 3 else None)
    with pytest.raises(
        StyleLabError, match=r"cannot resume the clip in .*: it was made with steps=2, but this run has steps=4"
    ):
        clip.run_clip(built(*overrides, "steps=4"), tmp_path / "run", resume=True)


def test_an_image_run_has_no_temporal_term_and_no_clip_settings(content_png):
    parts = built(f"content={content_png}")
    assert "temporal" not in parts.objective.terms and parts.video is None
    assert not [key for key in parts.settings if "temporal" in key or key.startswith("video")]
    assert built(f"content={content_png}", "init=content").init.func.__name__ == "from_content"


def test_a_clip_given_init_keeps_it_and_later_steps_shorten_the_later_frames(frames):
    parts = built(f"content={frames}", "init=content", "steps=10", "video.later_steps=4")
    assert parts.init.func.__name__ == "from_content"
    assert [lv.last for lv in plan.frame_levels(parts.levels, 4, 0)] == [10]
    assert [lv.last for lv in plan.frame_levels(parts.levels, 4, 1)] == [4]
    coarse = built(f"content={frames}", "schedule.sizes=[32,48]", "schedule.steps=[6,4]").levels
    assert [(lv.first, lv.last) for lv in plan.frame_levels(coarse, 5, 2)] == [(0, 3), (3, 5)]


@pytest.mark.parametrize(
    "override, message",
    [
        ("video.long_term=[10,1]", r"video.long_term must be frame distances >= 1 in increasing order, not \[10, 1\]"),
        ("video.fps=0", "video.fps must be a number > 0, not 0"),
        ("video.later_steps=-1", "video.later_steps must be >= 0, not -1"),
        ("video.passes=0", "video.passes must be >= 1, not 0"),
        ("video.blend=1.5", "video.blend must be between 0 and 1, not 1.5"),
        ("video/flow=files", r"video/flow=files needs video.flow.folder=<a folder of .flo files"),
    ],
)
def test_bad_video_settings_are_one_sentence(frames, override, message):
    with pytest.raises(StyleLabError, match=message):
        built(f"content={frames}", override)


def test_a_video_or_a_folder_as_style_is_refused(tmp_path, content_png, frames):
    for style in (tmp_path / "clip.mp4", frames):
        with pytest.raises(StyleLabError, match=rf"style={style} is a video or a folder; a style is one image"):
            built(f"content={content_png}", f"style={style}")


def test_the_temporal_weight_is_relative_to_the_objectives_size(tmp_path, frames, style):
    """loss.temporal_weight=1 weighs (alpha content(0) + beta style(0)) / mean(photo^2), computed here by hand:
    1/2 sum P^2 for the content, sum_l w_l sum A^2 / (4 N^2 M^2) for the Gram style (A = F F^T of the painting)."""
    parts = built(f"content={frames}", f"style={style}", "steps=1", "loss.temporal_weight=0.5", *SMALL)
    clip.run_clip(parts, tmp_path / "run")  # sets the weights (the first frame's balance), and the last frame's targets
    network = parts.model.extractor(parts.objective.layers, parts.model.load(seed=0, progress=False), "cpu")
    objective, content, gram = parts.objective, parts.objective.terms["content"], parts.objective.terms["style"]
    content0 = sum(0.5 * float(t.double().pow(2).sum()) * content.layers[name] for name, t in content.targets.items())
    painting = network(images.resize_to(images.load_image(style), (36, 48))[None])  # the style at the frame's size
    style0 = 0.0
    for name in gram.layers:
        f = painting[name][0].double().flatten(1)  # (N, M)
        style0 += gram.layers[name] * float((f @ f.T).pow(2).sum()) / (4 * f.shape[0] ** 2 * f.shape[1] ** 2)
    last = images.resize_longest(images.load_image(frames / "frame3.png"), 48)[None]  # (1, 3, 36, 48)
    size = objective.weights["content"] * content0 + objective.weights["style"] * style0
    scale = plan.temporal_scale(objective, network(last), last)
    assert scale == pytest.approx(size / float(last.double().pow(2).mean()), rel=1e-4)
    first = json.loads((tmp_path / "run" / "clip.json").read_text())["temporal_scale"]  # measured on frame 1
    assert objective.weights["temporal"] == pytest.approx(0.5 * first) and first != pytest.approx(scale)


@pytest.mark.slow
def test_the_command_line_runs_a_clip_and_a_sweep_shares_its_flows(tmp_path, frames, style):
    args = [f"content={frames}", f"style={style}", "steps=2", *SMALL]
    done = run_cli(*args, f"hydra.run.dir={tmp_path / 'one'}")
    assert done.returncode == 0, done.stderr
    assert "video.mp4 (3 frames, temporal error" in done.stdout
    assert sorted(p.name for p in (tmp_path / "one" / "flows").rglob("*.flo"))  # cached in the run folder
    swept = run_cli("-m", *args, "loss.temporal_weight=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert swept.returncode == 0, swept.stderr
    flows = list((tmp_path / "sweep" / "flows").rglob("*.flo"))
    assert flows and not list((tmp_path / "sweep").glob("*/flows"))  # one cache for the sweep's jobs
    jobs = sorted(p.parent.parent for p in (tmp_path / "sweep").glob("*/frames/00003.png"))
    errors = [events(job).Scalars("summary/temporal_error")[0].value for job in jobs]
    assert len(errors) == 2 and errors[0] > errors[1]  # HParams compares them: without the temporal term, more flicker


def test_bad_clips_are_one_sentence_and_leave_no_run_folder(tmp_path, style):
    folder = pan(tmp_path / "frames")
    (folder / "notes.txt").write_text("not a frame")
    done = run_cli(f"content={folder}", f"style={style}", *SMALL, f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "notes.txt" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_clip_stopped_by_a_signal_resumes_from_the_command_line_to_the_same_bytes(tmp_path, frames, style):
    args = [sys.executable, "-m", "stylelab.cli", f"content={frames}", f"style={style}", "steps=30", *SMALL]
    whole = run_cli(*args[3:], f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([*args, f"hydra.run.dir={tmp_path / 'cut'}"], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (tmp_path / "cut" / clip.FRAMES / "00001.png").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert f"continue with resume={tmp_path / 'cut'}" in out
    assert not (tmp_path / "cut" / clip.FRAMES / "00003.png").exists()
    resumed = run_cli(f"resume={tmp_path / 'cut'}")
    assert resumed.returncode == 0, resumed.stderr
    assert "starts over" not in resumed.stdout and "video.mp4 (3 frames" in resumed.stdout
    for k in (1, 2, 3):
        name = f"{k:05d}.png"
        assert (tmp_path / "whole" / clip.FRAMES / name).read_bytes() == (
            tmp_path / "cut" / clip.FRAMES / name
        ).read_bytes()
    steps = [e.step for e in events(tmp_path / "cut").Scalars("loss/total")]
    assert steps == sorted(set(steps))  # the frame that started over is not logged twice


def test_the_multi_pass_algorithm_runs_backward_then_forward_and_resumes_to_the_same_bytes(tmp_path, frames, style):
    assert plan.tasks(3, 3) == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    overrides = [f"content={frames}", f"style={style}", "steps=3", "video.passes=2", "video.later_steps=2", *SMALL]
    one = clip.run_clip(built(*overrides[: -len(SMALL)], *SMALL, "video.passes=1"), tmp_path / "one")
    whole = clip.run_clip(built(*overrides), tmp_path / "whole")
    assert whole.steps_done == 3 + 2 + 2 + 3 * 2  # the first frame in full, every other task later_steps
    assert sorted(p.name for p in (tmp_path / "whole" / "passes" / "1").iterdir()) == [
        "00001.png",
        "00002.png",
        "00003.png",
    ]
    first_pass = (tmp_path / "whole" / "passes" / "1" / "00003.png").read_bytes()
    assert first_pass == (tmp_path / "one" / clip.FRAMES / "00003.png").read_bytes()  # pass 1 is the one-pass run
    assert whole.temporal_error != one.temporal_error  # the second pass changed the frames
    asked = iter(range(10**6))
    cut = clip.run_clip(built(*overrides), tmp_path / "cut", stop=lambda: "SIGTERM" if next(asked) >= 12 else None)
    assert cut.interrupted and "pass 2" in cut.stopped
    clip.run_clip(built(*overrides), tmp_path / "cut", resume=True)
    for k in (1, 2, 3):
        name = f"{k:05d}.png"
        assert (tmp_path / "whole" / clip.FRAMES / name).read_bytes() == (
            tmp_path / "cut" / clip.FRAMES / name
        ).read_bytes()


def test_where_the_flow_cannot_be_trusted_a_frame_starts_as_the_first_did_unless_disoccluded_is_warped(tmp_path, style):
    """steps=0 writes each frame's start: frame 2 is the photo where c = 0 (behind the moving square), frame 1
    warped elsewhere; with init.disoccluded=warped (the paper's) frame 1 warped everywhere."""
    synthetic = pan_and_zoom(noise_photo(120, 160), frames=2, size=(36, 48), velocity=(4.0, 0.0))
    for k, frame in enumerate(synthetic.frames):
        images.save_image(frame[None], tmp_path / "frames" / f"{k + 1}.png")
    flows.write_flo(tmp_path / "flows" / "00002_00001.flo", synthetic.backward[1])
    flows.write_flo(tmp_path / "flows" / "00001_00002.flo", synthetic.forward[1])
    given = [f"content={tmp_path / 'frames'}", f"style={style}", "steps=0", "video/flow=files"]
    given += [f"video.flow.folder={tmp_path / 'flows'}", *SMALL]
    c = reliable(synthetic.backward[1], synthetic.forward[1])[0] > 0  # (h, w)
    assert 0 < int((~c).sum()) < c.numel() // 4
    starts = {}
    for fill in ("first", "warped"):
        result = api.run(api.compose(*given, f"init.disoccluded={fill}"), tmp_path / fill)
        starts[fill] = images.load_image(result.frames[1])
    photo = images.load_image(tmp_path / "frames" / "2.png")
    assert torch.allclose(starts["first"][:, ~c], photo[:, ~c], atol=1 / 255)
    assert torch.allclose(starts["first"][:, c], starts["warped"][:, c], atol=1 / 255)
    assert (starts["warped"][:, ~c] - photo[:, ~c]).abs().max() > 0.1


def test_a_clip_whose_frames_cannot_fit_in_memory_is_refused_before_the_network_loads(
    tmp_path, frames, style, monkeypatch
):
    parts = built(f"content={frames}", f"style={style}", *SMALL)
    monkeypatch.setattr(memory, "available", lambda device: 10**6)  # 1 MB free
    monkeypatch.setattr(type(parts.model), "load", lambda *a, **k: pytest.fail("the weights were loaded"))
    with pytest.raises(StyleLabError, match=r"this run needs about .* and the cpu has 0.0 GB available"):
        clip.run_clip(parts, tmp_path / "run")
    assert not (tmp_path / "run").exists()

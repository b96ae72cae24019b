"""The Gatys 2017 controls in whole runs: the equivalences they promise, what TensorBoard shows, coarse to
fine with resume across levels, and the one-sentence errors."""

import numpy as np
import pytest
import torch
from conftest import SHALLOW, SMOKE, events, interrupt_after, make_image, run_cli, run_job, steps_of
from PIL import Image

from stylelab import checkpoint, signals
from stylelab.controls.colour import luminance, rgb_to_yiq
from stylelab.errors import StyleLabError
from stylelab.io.images import load_image, resize_longest

FAST = [*SMOKE, *SHALLOW, "steps=4"]


def mask(path, size=(48, 40), left_white=True, full=False):
    """A mask image: white (the region) on the left half, or everywhere."""
    w, h = size
    a = np.zeros((h, w), np.uint8)
    if full:
        a[:] = 255
    else:
        a[:, : w // 2] = 255 if left_white else 0
        a[:, w // 2 :] = 0 if left_white else 255
    Image.fromarray(a).save(path)
    return path


@pytest.fixture
def images3(tmp_path):
    return (
        make_image(tmp_path / "c.png", seed=1),
        make_image(tmp_path / "s1.png", (40, 56), seed=2),
        make_image(tmp_path / "s2.png", (56, 40), seed=3),
    )


def final(run_dir):
    return (run_dir / "final.png").read_bytes()


@pytest.mark.slow
def test_the_equivalences(tmp_path, images3):
    content, s1, s2 = images3
    common = [f"content={content}", *FAST]
    run_job(tmp_path / "alone", *common, f"style={s1}")
    run_job(tmp_path / "blend", *common, f"style=[{s1},{s2}]", "style_blend=[1,0]")
    run_job(tmp_path / "scale", *common, f"style={s1}", "style_scale=1.0", "colour=none")
    run_job(tmp_path / "mask", *common, f"style={s1}", f"mask.content=[{mask(tmp_path / 'all.png', full=True)}]")
    # style_blend=[1,0] is the first style alone; a mask covering everything is no mask; the defaults are the paper's
    assert final(tmp_path / "blend") == final(tmp_path / "alone")
    assert final(tmp_path / "scale") == final(tmp_path / "alone")
    assert final(tmp_path / "mask") == final(tmp_path / "alone")
    run_job(tmp_path / "half", *common, f"style={s1}", "style_blend=[2]")  # one weight: normalised to 1
    assert final(tmp_path / "half") == final(tmp_path / "alone")
    run_job(tmp_path / "mixed", *common, f"style=[{s1},{s2}]")  # equal weights by default
    assert final(tmp_path / "mixed") != final(tmp_path / "alone")


def test_luminance_transfer_keeps_the_contents_chroma(tmp_path, images3):
    content, s1, _ = images3
    run_job(tmp_path / "run", f"content={content}", f"style={s1}", *FAST, "colour=luminance", "log.image_every=1")
    acc = events(tmp_path / "run")
    style_shown = acc.Images("image/style")[0]
    shown = np.asarray(Image.open(__import__("io").BytesIO(style_shown.encoded_image_string)).convert("RGB"))
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()  # the style as used: grey
    assert "image/final" in acc.Tags()["images"]
    picture = load_image(tmp_path / "run" / "final.png")
    photo = resize_longest(load_image(content), 48)
    chroma_out, chroma_in = rgb_to_yiq(picture)[1:], rgb_to_yiq(photo)[1:]
    unclipped = (picture > 0.01).all(0) & (picture < 0.99).all(0)
    assert unclipped.float().mean() > 0.5
    torch.testing.assert_close(chroma_out[:, unclipped], chroma_in[:, unclipped], atol=0.01, rtol=0)


def test_colour_matching_shows_the_recoloured_style(tmp_path, images3):
    content, s1, _ = images3
    run_job(tmp_path / "run", f"content={content}", f"style={s1}", *FAST, "colour=match", "colour.method=chol")
    acc = events(tmp_path / "run")
    style_shown = np.asarray(Image.open(__import__("io").BytesIO(acc.Images("image/style")[0].encoded_image_string)))
    photo = resize_longest(load_image(content), 48)
    assert np.allclose(style_shown.reshape(-1, 3).mean(0) / 255, photo.reshape(3, -1).mean(1).numpy(), atol=0.02)
    assert luminance(photo).shape[0] == 1


def test_coarse_to_fine_steps_run_on_and_each_level_ends_in_tensorboard(tmp_path, images3):
    content, s1, _ = images3
    run_job(
        tmp_path / "run",
        f"content={content}",
        f"style={s1}",
        *SMOKE,
        *SHALLOW,
        "schedule.sizes=[32,48,64]",
        "schedule.steps=[3,2,4]",
        "log.every=1",
        "log.image_every=100",
    )
    acc = events(tmp_path / "run")
    # steps run on across the levels; where one hands over to the next, both are logged, each at its own size:
    # the coarse level's last losses and image, then the fine level's first
    assert steps_of(acc, "loss/total") == [0, 1, 2, 3, 3, 4, 5, 5, 6, 7, 8, 9]
    assert steps_of(acc, "image/generated", "Images") == [0, 3, 3, 5, 5, 9]
    sizes = [
        tuple(Image.open(__import__("io").BytesIO(e.encoded_image_string)).size) for e in acc.Images("image/generated")
    ]
    assert sizes == [(32, 27), (32, 27), (48, 40), (48, 40), (64, 53), (64, 53)]
    assert [(e.step, e.value) for e in acc.Scalars("level/size")] == [(0, 32), (3, 48), (5, 64)]
    assert steps_of(acc, "image/content", "Images") == [0, 3, 5]  # the content at every level's size
    content_at = [e.value for e in acc.Scalars("loss/content")]
    assert content_at[4] > content_at[3]  # the fine level's content loss sums over more positions
    with Image.open(tmp_path / "run" / "final.png") as im:
        assert im.size == (64, 53)  # the last level's size


def test_a_level_that_converges_early_hands_on_to_the_next(tmp_path, images3, caplog):
    content, s1, _ = images3
    # any change is below this tolerance: each level stops after its second update
    with caplog.at_level("INFO", logger="stylelab"):
        run_job(
            tmp_path / "run",
            f"content={content}",
            f"style={s1}",
            *SMOKE,
            *SHALLOW,
            "schedule.sizes=[32,48]",
            "schedule.steps=[5,4]",
            "log.every=1",
            "log.image_every=100",
            "optimizer.tolerance_change=1e30",
        )
    assert "level 1 (32 px) stopped after 2 steps: loss changed by less than" in caplog.text
    assert "level 2 starts at step 5" in caplog.text
    acc = events(tmp_path / "run")
    assert steps_of(acc, "loss/total") == [0, 1, 2, 5, 6, 7]
    assert steps_of(acc, "image/generated", "Images") == [0, 2, 5, 7]  # level 1's result at the step it ended
    with Image.open(tmp_path / "run" / "final.png") as im:
        assert im.size == (48, 40)


@pytest.mark.slow
@pytest.mark.parametrize(
    "asks,stop_at", [(2, 2), (3, 3), (6, 5)], ids=["inside-level-1", "at-the-end-of-level-1", "inside-level-2"]
)
def test_resume_across_levels_gives_the_same_bytes(tmp_path, images3, monkeypatch, asks, stop_at):
    """A signal is answered before every update and between two levels (asks: the answers until it comes)."""
    content, s1, _ = images3
    common = [
        f"content={content}",
        f"style={s1}",
        *SMOKE,
        *SHALLOW,
        "schedule.sizes=[32,48]",
        "schedule.steps=[3,4]",
        "log.every=1",
        "loss/style=sliced_w2",
    ]
    run_job(tmp_path / "whole", *common)
    part = tmp_path / "part"
    with monkeypatch.context() as m:
        m.setattr(signals.StopSignals, "reason", interrupt_after(asks))
        run_job(part, *common)
    saved = torch.load(part / checkpoint.FILE, weights_only=True)
    assert saved["step"] == stop_at and saved["level"] == (0 if stop_at <= 3 else 1)
    run_job(part, *common, f"resume={part}")
    assert final(part) == final(tmp_path / "whole")
    a, b = events(tmp_path / "whole"), events(part)
    assert steps_of(b, "loss/total") == steps_of(a, "loss/total") == [0, 1, 2, 3, 3, 4, 5, 6, 7]
    assert [e.value for e in b.Scalars("loss/total")] == [e.value for e in a.Scalars("loss/total")]
    assert steps_of(b, "image/generated", "Images") == steps_of(a, "image/generated", "Images")


def test_several_styles_and_masks_from_the_api(tmp_path):
    import stylelab

    content, s1, s2 = torch.rand(3, 40, 48), torch.rand(3, 40, 40), torch.rand(3, 30, 40)
    picture = stylelab.stylize(content, [s1, s2], *FAST, "style_blend=[0.7,0.3]")
    assert picture.size == (48, 40)
    left, right = mask(tmp_path / "l.png"), mask(tmp_path / "r.png", left_white=False)
    result = stylelab.transfer(content, [s1, s2], *FAST, f"mask.content=[{left},{right}]", "mask.propagation=all")
    assert result.image.shape == (1, 3, 40, 48) and result.final.values["style"] > 0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["style=[{s1},{s2}]", "style_blend=[1,2,3]"], "style_blend has 3 weights for 2 styles"),
        (["style=[{s1},{s2}]", "mask.content=[{left}]"], "mask.content has 1 masks but style has 2 images"),
        (["mask.content=[{left},{right}]", "mask.style=[{left}]"], "mask.style has 1 masks but mask.content has 2"),
        (["mask.content=[{text}]"], "mask.content: cannot read image"),
        (["mask.content=[{square}]"], "is 20x20 but the content is 48x40: a mask must have the proportions"),
        (["style_scale=0"], "style_scale must be > 0, not 0.0"),
        (["style_scale=-1"], "style_scale must be > 0"),
        (["schedule.sizes=[32,64]", "schedule.steps=[5]"], "schedule.sizes and schedule.steps must be two lists of"),
        (["schedule.sizes=[32,64]"], "schedule.sizes and schedule.steps must be two lists of the same length"),
        (["style=[{s1},{s2}]", "loss/style=sliced_w2"], "SlicedW2Loss cannot blend several styles"),
        (["mask.content=[{left}]", "loss/style=w2"], "mask.content needs a style loss with spatial control"),
        (["mask.content=[{left}]", "style_blend=[1]"], "style_blend mixes styles over the whole image"),
        (["mask.style=[{left}]"], "mask.style picks a part of each region's style image; it needs mask.content"),
    ],
)
def test_control_mistakes_are_one_sentence_before_any_file(tmp_path, images3, overrides, message):
    content, s1, s2 = images3
    (tmp_path / "t.png").write_text("not an image")
    Image.new("L", (20, 20), 255).save(tmp_path / "sq.png")
    paths = {
        "s1": s1,
        "s2": s2,
        "left": mask(tmp_path / "l.png"),
        "right": mask(tmp_path / "r.png", left_white=False),
        "text": tmp_path / "t.png",
        "square": tmp_path / "sq.png",
    }
    args = [f"content={content}", f"style={s1}", *FAST, *(o.format(**paths) for o in overrides)]
    with pytest.raises(StyleLabError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run_job(tmp_path / "run", *args)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_control_mistakes_exit_2_from_the_command_line(tmp_path, images3):
    content, s1, s2 = images3
    proc = run_cli(
        f"content={content}", f"style=[{s1},{s2}]", "style_blend=[1,2,3]", *FAST, f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "stylelab: error: style_blend has 3 weights for 2 styles"
    assert not (tmp_path / "run").exists()

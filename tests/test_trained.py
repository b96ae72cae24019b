"""Pictures made with a trained network: the stand-in VGG16 in ../shared/weights (retrained from ImageNet VGG16
for edges, Caffe input; see its README). Every assertion is on a measure computed from the picture's pixels
(stylelab.measures), never on the network's own losses.

Sizes and steps are small so the set fits CI (about 4 minutes on 2 cores); the thresholds were measured at
these sizes on this network (values in each test's comment) and leave a margin. The runs are deterministic
on the CPU for a given seed, so the margin covers other CPUs and torch versions, not chance.

A claim that a picture is stylised goes through `assert_stylised`, which also checks it on the unchanged
input (the photo, or the noise a texture starts from): a claim the unchanged input meets cannot tell a
stylisation from a run that did nothing, and fails the test.
"""

import os
from pathlib import Path
from typing import Callable

import pytest
import torch
from conftest import REPO

import stylelab
from stylelab import measures
from stylelab.io import images
from stylelab.video import flow as flows
from stylelab.video.synthetic import pan_and_zoom

SHARED = Path(os.environ.get("STYLELAB_SHARED", REPO.parent / "shared"))  # where CI and this machine keep it
WEIGHTS = SHARED / "weights" / "vgg16-hed.pth"
PHOTO = SHARED / "images" / "tubingen.jpg"
STARRY = SHARED / "images" / "starry_night.jpg"
SCREAM = SHARED / "images" / "the_scream.jpg"
STAND_IN = ["model=vgg16", f"model.weights={WEIGHTS}", "model.format=caffe", "log.progress=false"]

pytestmark = [
    pytest.mark.trained,
    pytest.mark.slow,
    pytest.mark.skipif(
        not WEIGHTS.is_file() or not PHOTO.is_file(),
        reason=f"needs the trained stand-in {WEIGHTS} and the images in {SHARED / 'images'}",
    ),
]


def at_size_of(path: Path, picture: torch.Tensor) -> torch.Tensor:
    """The image at `path` resized to the picture's (H, W), as the run resized it."""
    return images.resize_to(images.load_image(path), tuple(picture.shape[-2:]))


def picture(*overrides: str, content=PHOTO, style=STARRY) -> torch.Tensor:
    """The picture a run writes, (3, H, W) in [0, 1]."""
    return (
        stylelab.transfer(
            str(content) if isinstance(content, Path) else content,
            style if isinstance(style, (list, torch.Tensor)) else str(style),
            *STAND_IN,
            *overrides,
        )
        .image[0]
        .clamp(0, 1)
    )


def assert_stylised(
    picture: torch.Tensor, unchanged: torch.Tensor, claims: dict[str, Callable[[torch.Tensor], bool]]
) -> None:
    """Every claim holds for the picture and fails for the unchanged input (same size): each can tell."""
    for name, claim in claims.items():
        assert not claim(unchanged), f"the claim '{name}' holds for the unchanged input: it cannot tell a stylisation"
        assert claim(picture), f"the picture fails the claim '{name}'"


def texture_moved(photo: torch.Tensor, painting: torch.Tensor, below: float) -> Callable[[torch.Tensor], bool]:
    """The claim: the picture's luminance texture moved toward the painting's (texture ratio below `below`)."""
    return lambda x: measures.texture_ratio(x, photo, painting) < below


def test_the_stylisation_claims_fail_on_the_unchanged_photo():
    # the helper itself: a claim the photo meets is refused
    photo = images.resize_longest(images.load_image(PHOTO), 128)
    with pytest.raises(AssertionError, match="holds for the unchanged input"):
        assert_stylised(photo, photo, {"anything": lambda x: True})
    painting = at_size_of(STARRY, photo)
    assert not texture_moved(photo, painting, 0.95)(photo) and texture_moved(photo, painting, 0.05)(painting)


@pytest.fixture(scope="module")
def stylised() -> torch.Tensor:
    """The default run (model=vgg16 starts from the photo; beta from the weights' balance) at 128 px."""
    return picture("image.size=128", "steps=60")


def test_content_reconstruction_keeps_less_of_the_photo_the_deeper_the_layer():
    # Fig 1 of the paper, from noise with the content term alone. Measured at 96 px, 100 steps: PSNR 25.0,
    # 14.2, 9.5, 8.9, 8.7 dB and edge correlation 1.00, 0.99, 0.29, 0.12, -0.02 from relu1_1 to relu5_1; the
    # deep layers keep the layout but not the exact colours, so PSNR falls steeply and then slowly (the
    # last step is 0.18 dB; the test asks for 0.05).
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    psnr, edges = [], []
    for layer in layers:
        x = picture("image.size=96", "steps=100", "init=noise", "loss.beta=0", f"loss.content_layers=[{layer}]")
        photo = at_size_of(PHOTO, x)
        psnr.append(measures.psnr(x, photo))
        edges.append(measures.edge_correlation(x, photo))
    assert psnr[0] > 20 and psnr[1] > 12  # the first two layers give the photo back nearly as it is
    assert all(a > b + 0.05 for a, b in zip(psnr, psnr[1:])), psnr
    assert edges[0] > 0.9 and edges[2] > 0.2 and edges[4] < 0.1, edges


def test_stylisation_moves_palette_and_texture_to_the_painting_and_keeps_the_photos_edges(stylised):
    # measured: edge correlation 0.80 with the photo; palette distance 0.052 to the painting, 0.089 to the
    # photo (the photo and the painting are 0.115 apart); texture ratio 0.22
    photo, painting = at_size_of(PHOTO, stylised), at_size_of(STARRY, stylised)
    assert measures.edge_correlation(stylised, photo) > 0.6
    apart = measures.palette_distance(photo, painting)
    assert_stylised(
        stylised,
        photo,
        {
            "palette nearer the painting's than the photo's": lambda x: (
                measures.palette_distance(x, painting) < 0.75 * measures.palette_distance(x, photo)
            ),
            "palette moved toward the painting's": lambda x: measures.palette_distance(x, painting) < 0.6 * apart,
            "texture moved toward the painting's": texture_moved(photo, painting, 0.45),
        },
    )


@pytest.mark.parametrize("colour,texture", [("luminance", 0.6), ("original", 0.45)])
def test_luminance_and_original_colours_keep_the_photos_chroma_and_move_its_texture(stylised, colour, texture):
    # measured: the chroma (YIQ's I, Q) is 0.0000 (luminance) and 0.0002 (original) from the photo's, where
    # the plain stylisation's is 0.042 (clipping to [0, 1] is the only thing that changes it); texture ratio
    # 0.54 (luminance: 0.87 before the style layers were evened out, 0.65 while the loss also saw the chroma)
    # and 0.22 (original)
    x = picture("image.size=128", "steps=60", f"colour={colour}")
    photo, painting = at_size_of(PHOTO, x), at_size_of(STARRY, x)
    assert measures.chroma_error(x, photo) < 0.005
    assert measures.chroma_error(stylised, photo) > 0.02
    assert measures.edge_correlation(x, photo) > 0.6  # still the photo
    assert_stylised(x, photo, {"texture moved toward the painting's": texture_moved(photo, painting, texture)})


def test_each_masked_region_takes_its_own_styles_colours(tmp_path):
    # left half: The Starry Night (blue), right half: The Scream (orange), with L-BFGS (torch's stalls on this
    # network with masks). Measured palette distances: left 0.099 to its own style, 0.332 to the other; right
    # 0.236 to its own, 0.298 to the other (with the style layers evened out, the colour-carrying relu1_1
    # weighs less than with equal w_l, where they were 0.062 / 0.346 and 0.174 / 0.295)
    width, height = 128, 96
    left = torch.zeros(1, 3, height, width)
    left[..., : width // 2] = 1
    images.save_image(left, tmp_path / "left.png")
    images.save_image(1 - left, tmp_path / "right.png")
    x = picture(
        "image.size=128",
        "steps=80",
        f"mask.content=[{tmp_path / 'left.png'},{tmp_path / 'right.png'}]",
        style=[str(STARRY), str(SCREAM)],
    )
    starry, scream = at_size_of(STARRY, x), at_size_of(SCREAM, x)
    photo = at_size_of(PHOTO, x)

    def own_colours(y: torch.Tensor) -> bool:
        left, right = y[:, :, : width // 2], y[:, :, width // 2 :]
        return all(
            measures.palette_distance(half, own) < 0.85 * measures.palette_distance(half, other)
            for half, own, other in ((left, starry, scream), (right, scream, starry))
        )

    assert_stylised(x, photo, {"each half nearer its own style's palette": own_colours})


def tiles() -> torch.Tensor:
    """A 16 px tile of four flat colours, repeated to (3, 48, 64)."""
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.7, 0.2], [0.15, 0.2, 0.9], [0.95, 0.85, 0.1]])
    tile = torch.zeros(3, 16, 16)
    for (y, x), colour in zip([(0, 0), (0, 8), (8, 0), (8, 8)], colours):
        tile[:, y : y + 8, x : x + 8] = colour[:, None, None]
    return tile.repeat(1, 3, 4)


def test_a_tiled_style_synthesises_a_texture_with_the_tiles_colours():
    # texture synthesis (alpha 0) from noise with stylelab's L-BFGS, where torch's stalls (next test).
    # Measured at 64 px, 60 steps: palette distance to the tiles 0.088 (the noise started at 0.295), 0.454 to
    # the photo; texture ratio 0.66 (noise -> tiles)
    style = tiles()
    x = picture("image.size=64", "steps=60", "init=noise", "loss.alpha=0", style=style)
    noise = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0))  # the run's start (seed 0)
    assert measures.palette_distance(x, style) < 0.5 * measures.palette_distance(x, at_size_of(PHOTO, x))
    assert_stylised(
        x,
        noise,
        {
            "palette moved toward the tiles'": lambda y: (
                measures.palette_distance(y, style) < 0.6 * measures.palette_distance(noise, style)
            ),
            "texture moved toward the tiles'": texture_moved(noise, style, 0.85),
        },
    )


def test_torchs_lbfgs_stalls_where_stylelabs_does_not_and_the_run_says_so():
    # torch's L-BFGS from noise on this network at 64 px: its first step (1/|g|_1 = 1e-7) is too short for a
    # curvature pair above float32's rounding, so its second step is the raw gradient and overshoots (the total
    # goes from 5.9e6 to 7.7e22); the pair from up there pins its step at 1e-8 for good. The run says so.
    # (loss.beta=1: a beta given keeps the layer weights equal, the objective torch's L-BFGS stalls on)
    with pytest.warns(
        UserWarning, match=r"the loss has not changed for 10 steps \(step 1[0-9]\): the optimizer is stuck"
    ):
        stalled = stylelab.transfer(
            str(PHOTO),
            tiles(),
            *STAND_IN,
            "image.size=64",
            "steps=15",
            "init=noise",
            "loss.alpha=0",
            "loss.beta=1",
            "optimizer=lbfgs_torch",
        )
    start = stalled.curves["loss/total"][0][1]
    assert stalled.final.total.item() > 0.99 * start
    # stylelab's, same start: measured 4.9e4 after 30 steps, from 5.9e6
    moved = stylelab.transfer(
        str(PHOTO), tiles(), *STAND_IN, "image.size=64", "steps=15", "init=noise", "loss.alpha=0", "loss.beta=1"
    )
    assert moved.final.total.item() < 0.1 * start


def test_a_clip_flickers_less_with_ruders_method_and_every_frame_is_stylised(tmp_path):
    """Tübingen panned and zoomed with a square crossing it (exact flows): Ruder et al.'s method against each frame
    alone, the temporal error measured with the exact flow where each pixel was visible."""
    clip = pan_and_zoom(images.resize_longest(images.load_image(PHOTO), 160), frames=3, size=(48, 64))
    for k, frame in enumerate(clip.frames):
        images.save_image(frame[None], tmp_path / "clip" / f"{k + 1}.png")
    for k in (1, 2):
        flows.write_flo(tmp_path / "flows" / f"{k + 1:05d}_{k:05d}.flo", clip.backward[k])
        flows.write_flo(tmp_path / "flows" / f"{k:05d}_{k + 1:05d}.flo", clip.forward[k])
    common = [f"content={tmp_path / 'clip'}", f"style={STARRY}", *STAND_IN, "image.size=64", "steps=60"]
    common += ["video/flow=files", f"video.flow.folder={tmp_path / 'flows'}"]
    runs = {}
    for name, overrides in (("alone", ["loss.temporal_weight=0", "init=content"]), ("ruder", [])):
        result = stylelab.run(stylelab.compose(*common, *overrides), tmp_path / name)
        runs[name] = [images.load_image(p) for p in result.frames]
    alone, ruder = (measures.temporal_error(runs[n], clip.backward[1:], clip.visible[1:]) for n in ("alone", "ruder"))
    assert ruder < 0.4 * alone  # measured: 0.00423 against 0.01599 (0.26x)
    for photo, frame in zip(clip.frames, runs["ruder"]):  # measured: texture 0.60-0.68, edges 0.63-0.65
        assert_stylised(
            frame,
            photo,
            {
                "texture moved": texture_moved(photo, at_size_of(STARRY, frame), 0.8),
                "palette nearer the painting": lambda x, p=photo: (
                    measures.palette_distance(x, at_size_of(STARRY, x))
                    < measures.palette_distance(p, at_size_of(STARRY, p)) * 0.8
                ),
            },
        )
        assert measures.edge_correlation(frame, photo) > 0.3  # the photo is still there

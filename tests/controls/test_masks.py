"""Masks: reading, the three propagations through the network's grid (the model's), normalisation."""

import pytest
import torch
from PIL import Image

from stylelab.controls.masks import guides, normalise, read_mask, resize_mask
from stylelab.errors import StyleLabError
from stylelab.models.vgg import VGG

VGG19 = VGG("vgg19")


def propagate(mask, layer, how="simple"):
    return VGG19.propagate_guide(mask, layer, how)


def columns(width: int, inside: range, height: int = 6) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    mask[..., list(inside)] = 1.0
    return mask


def test_inside_and_all_erode_and_dilate_by_each_conv_and_pool():
    mask = columns(8, range(0, 3))  # columns 0..2 of 8
    # one 3 x 3 conv: a unit at column 2 sees column 3, outside; the image border does not count against it
    assert propagate(mask, "relu1_1", "inside")[0, 0, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert propagate(mask, "relu1_1", "all")[0, 0, 0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    # two convs, then a 2 x 2 pool: inside keeps column 0 -> pooled column 0 (needs columns 0 and 1) is out
    assert propagate(mask, "pool1", "inside")[0, 0, 0].tolist() == [0, 0, 0, 0]
    assert propagate(mask, "pool1", "all")[0, 0, 0].tolist() == [1, 1, 1, 0]


def test_simple_resizes_to_the_layers_grid():
    mask = columns(8, range(0, 4), height=8)
    out = propagate(mask, "relu2_1", "simple")  # one pool: 4 x 4
    assert out.shape == (1, 1, 4, 4) and out[0, 0, 0].tolist() == [1, 1, 0, 0]
    assert propagate(columns(8, range(0, 3), height=8), "relu2_1")[0, 0, 0].tolist() == [1, 0.5, 0, 0]


def test_normalised_so_a_full_mask_is_exactly_one():
    full = torch.ones(1, 1, 4, 4)
    assert normalise(full) is full
    half = columns(4, range(0, 2), height=4)
    torch.testing.assert_close(normalise(half).pow(2).mean(), torch.tensor(1.0))
    assert normalise(half)[0, 0, 0].tolist() == pytest.approx([2**0.5, 2**0.5, 0, 0])
    assert normalise(torch.zeros(1, 1, 2, 2)) is None
    assert guides(columns(8, range(0, 1)), ["relu1_1", "pool1"], VGG19, "inside") == {
        "relu1_1": None,
        "pool1": None,
    }  # one column erodes away
    with pytest.raises(StyleLabError, match="mask.propagation must be one of simple, inside, all, not 'outside'"):
        guides(columns(8, range(0, 1)), ["relu1_1"], VGG19, "outside")


def test_masks_are_read_like_any_image(tmp_path):
    grey = Image.new("L", (4, 2), 0)
    grey.putpixel((0, 0), 140)  # 0.55
    grey.putpixel((1, 0), 115)  # 0.45
    grey.save(tmp_path / "m.png")
    Image.new("RGB", (4, 2), (255, 255, 255)).save(tmp_path / "white.jpg")
    assert read_mask(str(tmp_path / "m.png"))[0, 0, 0].tolist() == [1, 0, 0, 0]
    assert read_mask(str(tmp_path / "m.png"), soft=True)[0, 0, 0, 0].item() == pytest.approx(140 / 255, abs=1e-6)
    assert read_mask(str(tmp_path / "white.jpg")).min() == 1
    assert resize_mask(read_mask(str(tmp_path / "white.jpg")), (6, 12)).shape == (1, 1, 6, 12)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(StyleLabError, match="cannot read image"):
        read_mask(str(tmp_path / "text.png"))

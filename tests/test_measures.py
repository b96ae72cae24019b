"""stylelab.measures against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from stylelab import measures
from stylelab.controls.colour import rgb_to_yiq, yiq_to_rgb
from stylelab.io import images
from stylelab.video.synthetic import noise_photo, pan_and_zoom
from stylelab.video.warp import warp


def flat(r: float, g: float, b: float, h: int = 12, w: int = 16) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float32)[:, None, None].expand(3, h, w).clone()


def test_psnr_of_a_uniform_error():
    # MSE 0.1^2 = 0.01: 10 log10(1 / 0.01) = 20 dB; identical images: infinite
    assert measures.psnr(flat(0, 0, 0), flat(0.1, 0.1, 0.1)) == pytest.approx(20.0)
    assert measures.psnr(flat(0.3, 0.2, 0.1), flat(0.3, 0.2, 0.1)) == math.inf


def test_edge_correlation_sees_outlines_not_brightness():
    vertical = torch.zeros(3, 32, 32)
    vertical[:, :, 16:] = 1
    horizontal = vertical.transpose(1, 2).clone()
    assert measures.edge_correlation(vertical, vertical) == pytest.approx(1.0)
    assert measures.edge_correlation(vertical, 0.5 * vertical + 0.2) == pytest.approx(1.0, abs=1e-6)  # same edges
    assert measures.edge_correlation(vertical, horizontal) < 0.1


def test_palette_distance_of_flat_colours_is_their_distance_and_ignores_layout():
    # two flat images: no covariance, so W2 is the distance of the means, sqrt(0.3^2 + 0.4^2) = 0.5
    assert measures.palette_distance(flat(0.1, 0.5, 0.2), flat(0.4, 0.1, 0.2)) == pytest.approx(0.5, abs=1e-6)
    x = torch.rand(3, 12, 16, generator=torch.Generator().manual_seed(0))
    shuffled = x.flatten(1)[:, torch.randperm(192, generator=torch.Generator().manual_seed(1))].reshape(3, 12, 16)
    assert measures.palette_distance(x, shuffled) == pytest.approx(0.0, abs=1e-6)


def test_chroma_error_by_hand():
    # pure red has I = 0.595716, Q = 0.211456 (NTSC); greys have none, whatever their brightness
    assert measures.chroma_error(flat(1, 0, 0), flat(0, 0, 0)) == pytest.approx((0.595716 + 0.211456) / 2)
    assert measures.chroma_error(flat(0.2, 0.2, 0.2), flat(0.9, 0.9, 0.9)) == pytest.approx(0.0, abs=1e-6)


def test_colour_mean_over_a_mask():
    x = flat(0, 0, 0)
    x[:, :, 8:] = torch.tensor([1.0, 0.5, 0.25])[:, None, None]
    right = torch.zeros(12, 16, dtype=torch.bool)
    right[:, 8:] = True
    assert measures.colour_mean(x, right).tolist() == [1.0, 0.5, 0.25]
    assert measures.colour_mean(x).tolist() == [0.5, 0.25, 0.125]


def gradient(h: int = 40, w: int = 40) -> torch.Tensor:
    """A smooth 'photo': a diagonal ramp of brightness, in one hue."""
    ramp = (torch.arange(h)[:, None] / (2 * h) + torch.arange(w)[None, :] / (2 * w)).float()
    return torch.stack([0.2 + 0.6 * ramp, 0.1 + 0.7 * ramp, 0.3 + 0.4 * ramp])


def noise(h: int = 40, w: int = 40, seed: int = 0) -> torch.Tensor:
    """A textured 'painting': pixel noise."""
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def texture_by_hand(a: np.ndarray, b: np.ndarray, k: int = 7, stride: int = 2, seed: int = 0) -> float:
    """texture_distance written again with loops and numpy; only the random directions come from torch's
    generator, as the definition says."""

    def patches(x: np.ndarray) -> np.ndarray:
        y = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
        rows = []
        for i in range(0, y.shape[0] - k + 1, stride):
            for j in range(0, y.shape[1] - k + 1, stride):
                p = y[i : i + k, j : j + k].ravel()
                rows.append((p - p.mean()) / (p.std() + 0.02))
        return np.array(rows)

    d = torch.randn(64, k * k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).numpy()
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    pa, pb = np.sort(patches(a) @ d.T, axis=0), np.sort(patches(b) @ d.T, axis=0)  # (N, K), (M, K)
    m = min(len(pa), len(pb))
    q = (np.arange(m) + 0.5) / m

    def at_quantiles(v: np.ndarray) -> np.ndarray:
        n = len(v)
        return np.stack([np.interp(q * n - 0.5, np.arange(n), v[:, c]) for c in range(v.shape[1])], axis=1)

    return float(np.sqrt(np.mean((at_quantiles(pa) - at_quantiles(pb)) ** 2)))


def test_texture_distance_against_a_hand_computation():
    # 11 x 12 gives 3 x 3 patches and 13 x 14 gives 4 x 4: different counts, so the quantile reading counts too
    a, b = noise(11, 12, seed=1).double(), noise(13, 14, seed=2).double()
    expected = texture_by_hand(a.numpy(), b.numpy())
    assert expected > 0
    assert measures.texture_distance(a, b) == pytest.approx(expected, abs=1e-9)
    other_seed = texture_by_hand(a.numpy(), b.numpy(), seed=5)
    assert measures.texture_distance(a, b, seed=5) == pytest.approx(other_seed, abs=1e-9)


def test_sliced_wasserstein_in_one_dimension_is_the_rms_of_sorted_differences():
    # sorted 0, 1, 3 against 2, 2, 5: differences 2, 1, 2, mean square 3; either direction of the line
    a = torch.tensor([[0.0], [3.0], [1.0]], dtype=torch.float64)
    b = torch.tensor([[2.0], [5.0], [2.0]], dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    assert measures.sliced_wasserstein(a, b, one) == pytest.approx(math.sqrt(3))
    assert measures.sliced_wasserstein(a, b, -one) == pytest.approx(math.sqrt(3))
    # 0, 1 against 0, 1, 2, 3: the larger read at quantiles 1/4, 3/4, i.e. positions 0.5, 2.5: 0.5 and 2.5,
    # differences 0.5 and 1.5, mean square 1.25
    c = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    d = torch.tensor([[3.0], [0.0], [2.0], [1.0]], dtype=torch.float64)
    assert measures.sliced_wasserstein(c, d, one) == pytest.approx(math.sqrt(1.25))
    assert measures.sliced_wasserstein(d, c, one) == pytest.approx(math.sqrt(1.25))


def test_texture_ratio_is_one_for_the_photo_zero_for_the_painting_and_between_for_a_blend():
    photo, painting = gradient(), noise()
    assert measures.texture_ratio(photo, photo, painting) == 1.0
    assert measures.texture_ratio(painting, photo, painting) == 0.0
    assert 0 < measures.texture_ratio(0.5 * photo + 0.5 * painting, photo, painting) < 1
    half = photo.clone()
    half[:, :, 20:] = painting[:, :, 20:]  # the painting's texture pasted into the right half
    assert 0 < measures.texture_ratio(half, photo, painting) < 1


def test_texture_distance_is_colour_blind_but_sees_texture():
    picture, painting = gradient().double(), noise().double()
    yiq = rgb_to_yiq(picture)
    yiq[1] -= 0.05  # a different hue, the same Y
    yiq[2] += 0.1 * noise(seed=3)[0].double()  # and a chroma texture: none of it in Y
    recoloured = yiq_to_rgb(yiq)
    assert 0 <= recoloured.min() and recoloured.max() <= 1  # inside [0, 1]: the clamp does not change Y
    assert (recoloured - picture).abs().max() > 0.05
    before = measures.texture_distance(picture, painting)
    assert measures.texture_distance(recoloured, painting) == pytest.approx(before, abs=1e-6)
    stripes = picture + 0.2 * (torch.arange(40) // 2 % 2).double()[None, None, :]  # 2 px stripes
    assert abs(measures.texture_distance(stripes, painting) - before) > 0.01


def test_texture_distance_compares_pictures_of_different_sizes():
    distance = measures.texture_distance(gradient(40, 40), noise(48, 64))
    assert math.isfinite(distance) and distance > 0


def test_texture_ratio_needs_a_photo_and_painting_of_different_textures():
    photo = gradient()
    with pytest.raises(ValueError, match="the photo and the painting have the same texture"):
        measures.texture_ratio(noise(), photo, photo.clone())


def test_judged_measures_a_picture_against_its_photo_and_painting_at_the_pictures_size():
    photo, painting = gradient(), noise()  # (3, h, w); the picture is at another size, as a run's can be
    small = images.resize_to(photo, (photo.shape[1] // 2, photo.shape[2] // 2))
    found = measures.judged(small, photo, painting)
    at = tuple(small.shape[-2:])
    assert found == {
        "edges": measures.edge_correlation(small, images.resize_to(photo, at)),
        "palette_to_painting": measures.palette_distance(small, images.resize_to(painting, at)),
        "palette_to_photo": measures.palette_distance(small, images.resize_to(photo, at)),
        "texture": measures.texture_ratio(small, images.resize_to(photo, at), images.resize_to(painting, at)),
    }
    # the photo itself, at the picture's size: its own edges, palette and texture
    assert found["edges"] == pytest.approx(1.0) and found["texture"] == 1.0
    assert found["palette_to_photo"] == pytest.approx(0.0, abs=1e-6)
    assert measures.judged(images.resize_to(painting, at), photo, painting)["texture"] == 0.0


def test_temporal_error_by_hand_on_two_pixels():
    # one row of two grey pixels; the flow reads one pixel to the right, so the previous frame warped is
    # (0.6, 0.6) (the right pixel reads the border): differences -0.1 and 0.1 in each of 3 channels, D = 6
    before = torch.tensor([0.2, 0.6]).expand(3, 1, 2)
    after = torch.tensor([0.5, 0.7]).expand(3, 1, 2)
    right = torch.tensor([1.0, 0.0])[:, None, None].expand(2, 1, 2)
    assert measures.temporal_error([before, after], [right]) == pytest.approx(6 * 0.01 / 6)
    assert measures.temporal_error([before, after], [right], [torch.tensor([[[1.0, 0.0]]])]) == pytest.approx(0.005)
    # no motion: the plain mean square difference, (0.3^2 + 0.1^2) / 2 = 0.05; over two pairs, their mean
    still = torch.zeros(2, 1, 2)
    assert measures.temporal_error([before, after], [still]) == pytest.approx(0.05)
    assert measures.temporal_error([before, after, after], [still, still]) == pytest.approx(0.025)
    assert measures.temporal_error(torch.stack([before, after, after]), [still, still]) == pytest.approx(0.025)
    with pytest.raises(ValueError, match="3 frames need 2 backward flows"):
        measures.temporal_error([before, after, after], [still])


def test_temporal_error_is_zero_for_a_clip_that_follows_its_flow_and_grows_with_flicker():
    clip = pan_and_zoom(noise_photo(160, 200, seed=3))
    gen = torch.Generator().manual_seed(0)
    # a "stylised" clip: each frame its predecessor warped where that was visible, something new elsewhere
    stylised = [torch.rand(3, 96, 128, generator=gen)]
    for k in range(1, 5):
        warped = warp(stylised[-1].double(), clip.backward[k].double()).float()
        stylised.append(torch.where(clip.visible[k].bool(), warped, torch.rand(3, 96, 128, generator=gen)))
    assert measures.temporal_error(stylised, clip.backward[1:], clip.visible[1:]) == pytest.approx(0, abs=1e-12)
    unweighted = measures.temporal_error(stylised, clip.backward[1:])  # counts the new pixels too
    assert 0.002 < unweighted < 0.03  # about 4% of the pixels new, each about 1/6 off squared: 0.007
    # the real frames follow their flow but for bilinear resampling; a flicker of +-0.05 adds 0.05^2
    real = measures.temporal_error(clip.frames, clip.backward[1:], clip.visible[1:])
    flicker = [f + (0.05 if k % 2 else -0.05) for k, f in enumerate(clip.frames)]
    flickering = measures.temporal_error(flicker, clip.backward[1:], clip.visible[1:])
    visible = sum(float(v.mean()) for v in clip.visible[1:]) / 4
    assert real < 1e-5 and flickering == pytest.approx(real + 0.1**2 * visible, rel=0.05)

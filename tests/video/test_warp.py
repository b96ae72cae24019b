"""stylelab.video.warp against hand computations: warping by whole and half pixels, its gradient, Ruder et al.'s
weights on hand-made flows and on a synthetic clip with known occlusions, long-term weights, endpoint error."""

import pytest
import torch

from stylelab.video import warp as W
from stylelab.video.synthetic import noise_photo, pan_and_zoom


def constant(dx: float, dy: float, h: int, w: int, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor([dx, dy], dtype=dtype)[:, None, None].expand(2, h, w).clone()


def image(c: int = 3, h: int = 10, w: int = 12, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_a_whole_pixel_shift_is_slicing_inside_and_the_border_outside():
    x = image()
    out = W.warp(x, constant(2, -1, 10, 12, torch.float64))  # out(x, y) = x(x + 2, y - 1)
    assert out.shape == x.shape
    assert torch.allclose(out[:, 1:, :-2], x[:, :-1, 2:], atol=1e-12, rtol=0)
    assert torch.allclose(out[:, 0, :-2], x[:, 0, 2:], atol=1e-12, rtol=0)  # row -1 reads row 0 (the border)
    assert torch.allclose(out[:, 1:, -1], x[:, :-1, -1], atol=1e-12, rtol=0)  # columns 12, 13 read column 11
    # float32 as a run uses it: the normalised coordinates round, by far less than a grey level
    x32 = x.float()
    assert torch.allclose(W.warp(x32, constant(2, -1, 10, 12))[:, 1:, :-2], x32[:, :-1, 2:], atol=1e-5, rtol=0)
    assert torch.allclose(W.warp(x32, torch.zeros(2, 10, 12)), x32, atol=1e-6, rtol=0)


def test_half_pixel_shifts_average_the_neighbours():
    x = image(1, 4, 5)
    right = W.warp(x, constant(0.5, 0, 4, 5, torch.float64))
    assert torch.allclose(right[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2, atol=1e-12)
    assert torch.allclose(right[:, :, -1], x[:, :, -1], atol=1e-12)  # halfway to the outside: the border pixel
    diagonal = W.warp(x, constant(0.5, 0.5, 4, 5, torch.float64))
    four = (x[:, :-1, :-1] + x[:, :-1, 1:] + x[:, 1:, :-1] + x[:, 1:, 1:]) / 4
    assert torch.allclose(diagonal[:, :-1, :-1], four, atol=1e-12)
    # a quarter pixel up: 3/4 of this row, 1/4 of the one above
    up = W.warp(x, constant(0, -0.25, 4, 5, torch.float64))
    assert torch.allclose(up[:, 1:], 0.75 * x[:, 1:] + 0.25 * x[:, :-1], atol=1e-12)


def test_batches_take_one_flow_for_all_or_one_each():
    x = torch.stack([image(seed=1), image(seed=2)])  # (2, 3, 10, 12)
    one = constant(0.3, 1.7, 10, 12, torch.float64)
    both = torch.stack([one, constant(-2, 0.5, 10, 12, torch.float64)])  # (2, 2, 10, 12)
    assert W.warp(x, one).shape == (2, 3, 10, 12)
    assert torch.allclose(W.warp(x, one)[1], W.warp(x[1], one), atol=1e-12)
    assert torch.allclose(W.warp(x, both)[1], W.warp(x[1], both[1]), atol=1e-12)
    with pytest.raises(ValueError, match="cannot warp"):
        W.warp(x, torch.zeros(2, 9, 12))


def test_the_gradient_counts_how_often_each_pixel_is_read():
    # one pixel to the right: column 0 is never read, the last column twice (by itself and, at the border, by
    # the column before it), every other column once
    x = image(1, 3, 5).requires_grad_()
    W.warp(x, constant(1, 0, 3, 5, torch.float64)).sum().backward()
    expected = torch.tensor([0.0, 1.0, 1.0, 1.0, 2.0], dtype=torch.float64).expand(1, 3, 5)
    assert torch.allclose(x.grad, expected, atol=1e-9)


def test_consistent_flows_are_reliable_except_where_they_leave_the_picture():
    h, w = 6, 8
    c = W.reliable(constant(-1.5, 0.5, h, w), constant(1.5, -0.5, h, w))
    assert c.shape == (1, h, w) and c.dtype == torch.float32
    expected = torch.ones(1, h, w)
    expected[:, :, :2] = 0  # x - 1.5 < 0
    expected[:, -1, :] = 0  # y + 0.5 > 5
    assert torch.equal(c, expected)


def test_the_consistency_offset_forgives_small_disagreements_only():
    # forward = backward: |w~ + w^|^2 = 4 |w|^2 against 0.01 * 2 |w|^2 + 0.5, inconsistent once |w|^2 > 0.5 / 3.98
    assert W.DISOCCLUSION_RATIO == 0.01 and W.DISOCCLUSION_OFFSET == 0.5
    small, big = constant(0.2, 0.1, 5, 5), constant(0.3, 0.25, 5, 5)  # |w|^2 = 0.05, 0.1525 (limit 0.1256)
    inside = (slice(None), slice(None, -1), slice(None, -1))  # pixels whose flow stays in the picture
    assert W.reliable(small, small)[inside].min() == 1
    assert W.reliable(big, big)[inside].max() == 0


def test_a_step_in_the_flow_is_a_motion_boundary_on_both_sides():
    assert W.MOTION_RATIO == 0.01 and W.MOTION_OFFSET == 0.002
    backward = torch.zeros(2, 4, 10)
    backward[0, :, 6:] = 0.4  # u jumps at column 6; the forward flow undoes it exactly
    forward = -backward
    c = W.reliable(backward, forward)[0]
    # central differences: (u(x+1) - u(x-1)) / 2 = 0.2 at columns 5 and 6, so |grad u|^2 = 0.04 > 0.01 |w|^2 + 0.002
    # there; column 9 reads outside the picture (9.4 > 9)
    assert c[0].tolist() == [1, 1, 1, 1, 1, 0, 0, 1, 1, 0]
    assert torch.equal(c, c[:1].expand(4, 10))
    backward[0, :, 6:] = 0.04  # |grad u|^2 = 0.0004: under the offset, no boundary
    assert W.reliable(backward, -backward)[0, 0].tolist() == [1] * 9 + [0]  # column 9 still leaves it


def test_reliable_finds_the_disocclusions_of_a_synthetic_clip():
    clip = pan_and_zoom(noise_photo(160, 200, seed=3))
    for k in range(1, 5):
        c = W.reliable(clip.backward[k], clip.forward[k])[0].bool()
        visible = clip.visible[k][0].bool()
        agreement = float((c == visible).float().mean())
        found = float((~c)[~visible].float().mean())  # of the pixels not visible before, the share marked 0
        lost = float((~c)[visible].float().mean())  # of the visible ones, the share marked 0 (the square's edge)
        # measured: agreement 0.985-0.987, found 0.94-0.99, lost 0.013 (a two-pixel band around the square)
        assert agreement > 0.97 and found > 0.9 and lost < 0.03, (k, agreement, found, lost)


def test_long_term_counts_each_pixel_against_its_most_recent_visible_frame():
    c1 = torch.tensor([[[1.0, 1.0, 0.0, 0.0, 0.0]]])
    c2 = torch.tensor([[[1.0, 0.0, 1.0, 0.0, 0.0]]])
    c3 = torch.tensor([[[1.0, 1.0, 1.0, 1.0, 0.0]]])
    out = W.long_term([c1, c2, c3])
    assert [o.flatten().tolist() for o in out] == [
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
    ]
    # soft weights: max(c - sum of the nearer ones, 0)
    soft = W.long_term([torch.tensor([0.25]), torch.tensor([0.5]), torch.tensor([1.0])])
    assert [float(s) for s in soft] == [0.25, 0.25, 0.25]
    assert W.long_term([c2])[0] is not c2 and torch.equal(W.long_term([c2])[0], c2)


def test_endpoint_error_by_hand():
    truth = torch.zeros(2, 2, 3)
    flow = truth.clone()
    flow[:, :, 2] = torch.tensor([3.0, 4.0])[:, None]  # the right column 5 px off, the rest exact
    assert W.endpoint_error(flow, truth) == pytest.approx(10 / 6)
    mask = torch.tensor([[[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]])
    assert W.endpoint_error(flow, truth, mask) == pytest.approx(10 / 3)
    assert W.endpoint_error(flow, truth, mask[0]) == pytest.approx(10 / 3)
    assert W.endpoint_error(flow[None], truth[None], mask) == pytest.approx(10 / 3)
    with pytest.raises(ValueError, match="no pixel"):
        W.endpoint_error(flow, truth, torch.zeros(2, 3))

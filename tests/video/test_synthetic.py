"""stylelab.video.synthetic: the exact flows of a pan-and-zoom clip against hand computations, and the frames
they warp onto each other where `visible` says the pixel was in view, and not elsewhere."""

import pytest
import torch

from stylelab.errors import StyleLabError
from stylelab.video.synthetic import noise_photo, pan_and_zoom
from stylelab.video.warp import warp

PHOTO = noise_photo(160, 200, seed=3)


def test_the_noise_photo_is_deterministic_and_fills_0_to_1():
    a = noise_photo(40, 50, seed=1)
    assert a.shape == (3, 40, 50) and a.dtype == torch.float32
    assert torch.equal(a, noise_photo(40, 50, seed=1)) and not torch.equal(a, noise_photo(40, 50, seed=2))
    assert a.amin(dim=(1, 2)).tolist() == [0, 0, 0] and a.amax(dim=(1, 2)).tolist() == [1, 1, 1]


def test_a_whole_pixel_pan_shifts_the_frames_and_uncovers_the_edges():
    clip = pan_and_zoom(PHOTO, frames=3, size=(20, 30), shift=(2, 1), zoom=1.0, square=False)
    assert len(clip.frames) == 3 and clip.backward[0] is None and clip.forward[0] is None and clip.visible[0] is None
    for k in (1, 2):
        # the camera moved 2 right and 1 down: what frame k shows at (x, y) frame k-1 showed at (x + 2, y + 1)
        assert torch.equal(clip.backward[k], torch.tensor([2.0, 1.0])[:, None, None].expand(2, 20, 30))
        assert torch.equal(clip.forward[k], -clip.backward[k])
        assert torch.allclose(clip.frames[k][:, :-1, :-2], clip.frames[k - 1][:, 1:, 2:], atol=1e-6)
        expected = torch.ones(1, 20, 30)
        expected[:, -1:, :] = 0  # brought into view from below
        expected[:, :, -2:] = 0  # and from the right
        assert torch.equal(clip.visible[k], expected)


def test_zoom_flows_by_hand():
    # frame 1 magnifies frame 0 by 1.25 about the centre (14.5, 9.5): frame 1's pixel p was at
    # c + (p - c) / 1.25 in frame 0, so its backward flow is (p - c) (1 / 1.25 - 1) = -0.2 (p - c)
    clip = pan_and_zoom(PHOTO, frames=2, size=(20, 30), shift=(0, 0), zoom=1.25, square=False)
    assert clip.backward[1][:, 0, 0].tolist() == pytest.approx([-0.2 * -14.5, -0.2 * -9.5])
    assert clip.backward[1][:, 19, 29].tolist() == pytest.approx([-0.2 * 14.5, -0.2 * 9.5])
    # and frame 0's pixel p goes to c + 1.25 (p - c): forward flow 0.25 (p - c)
    assert clip.forward[1][:, 0, 0].tolist() == pytest.approx([0.25 * -14.5, 0.25 * -9.5])
    assert clip.visible[1].min() == 1  # zooming in brings nothing new into view


def test_the_exact_flow_warps_the_previous_frame_where_visible_and_not_in_the_squares_trail():
    clip = pan_and_zoom(PHOTO)  # 5 frames of 96 x 128, pan (2, 1) and zoom 1.02 a frame, the square moving (4, 2)
    assert [tuple(f.shape) for f in clip.frames] == [(3, 96, 128)] * 5
    for k in range(1, 5):
        assert clip.backward[k].shape == (2, 96, 128) and clip.visible[k].shape == (1, 96, 128)
        error = (warp(clip.frames[k - 1], clip.backward[k]) - clip.frames[k]).abs().amax(dim=0)  # (H, W)
        visible, square = clip.visible[k][0].bool(), clip.squares[k][0].bool()
        # bilinear resampling of an already resampled frame: measured max 0.0073, mean 0.001
        assert error[visible].max() < 0.02 and error[visible].mean() < 0.002
        # the background the square uncovered (left behind, in view, off the square now): a red square's trail
        trail = ~visible & ~square & clip.squares[k - 1][0].bool()
        assert trail.sum() > 100  # a 24 px square moving (4, 2) past a camera moving about (-2, -1)
        assert error[trail].mean() > 0.15  # measured 0.27-0.31
        # the square's own pixels move exactly with it: -(4, 2) backward, (4, 2) forward
        assert torch.equal(clip.backward[k][:, square], torch.tensor([[-4.0], [-2.0]]).expand(2, int(square.sum())))
        assert square.sum() == 24 * 24


def test_forward_and_backward_flows_undo_each_other_where_visible():
    clip = pan_and_zoom(PHOTO)
    for k in range(1, 5):
        # the forward flow read where the backward flow points: -backward (an affine field is exact under
        # bilinear interpolation, the square's constant one too)
        back_again = warp(clip.forward[k], clip.backward[k]) + clip.backward[k]  # (2, H, W)
        assert back_again.abs().amax(dim=0)[clip.visible[k][0].bool()].max() < 1e-4


def test_a_camera_that_leaves_the_photo_is_refused():
    with pytest.raises(StyleLabError, match="the camera leaves the 200 x 160 photo"):
        pan_and_zoom(PHOTO, frames=30, size=(96, 128), shift=(3, 0))
    with pytest.raises(StyleLabError, match="at least 2 frames"):
        pan_and_zoom(PHOTO, frames=1)

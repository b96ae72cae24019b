"""The temporal term (Ruder et al. 2016) against values computed by hand."""

import pytest
import torch

from stylelab.losses.base import IMAGE, Objective
from stylelab.losses.temporal import Temporal


def test_the_value_is_the_weighted_mean_squared_difference_over_all_pixels_and_channels():
    x = torch.zeros(1, 3, 2, 2)
    warped = torch.zeros(1, 3, 2, 2)
    warped[0, :, 0, 0] = 0.5  # one pixel differs by 0.5 in each channel
    warped[0, :, 1, 1] = 1.0  # another by 1, but its weight is 0 (a disocclusion)
    c = torch.ones(1, 1, 2, 2)
    c[0, 0, 1, 1] = 0
    term = Temporal()
    term.set_previous([warped], [c])
    # (1/D) sum_k c_k (x_k - w_k)^2 with D = 3 * 2 * 2: three channels of 0.25 at one pixel
    assert float(term({IMAGE: x})[IMAGE]) == pytest.approx(3 * 0.25 / 12)


def test_several_earlier_frames_add_and_no_earlier_frame_is_zero():
    x = torch.full((1, 3, 4, 4), 0.5)
    term = Temporal()
    assert float(term({IMAGE: x})[IMAGE]) == 0  # an image, or a clip's first frame
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    half = torch.zeros(1, 1, 4, 4)
    half[..., :2, :] = 1  # the top half against a, the bottom half against b
    term.set_previous([a, b], [half, 1 - half])
    assert float(term({IMAGE: x})[IMAGE]) == pytest.approx(
        0.25
    )  # every pixel 0.5 away from the frame it counts against


def test_a_coarse_level_sees_the_earlier_frames_resized_and_the_gradient_pulls_towards_them():
    warped = torch.full((1, 3, 8, 8), 0.75)
    term = Temporal()
    term.set_previous([warped], [torch.ones(1, 1, 8, 8)])
    x = torch.full((1, 3, 4, 4), 0.25, requires_grad=True)
    objective = Objective({"temporal": term}, {"temporal": 2.0}, {"temporal": "previous"})
    total = objective({}, x).total
    assert float(total.detach()) == pytest.approx(2.0 * 0.25)  # (0.75 - 0.25)^2 everywhere, weight 2
    total.backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.0 * 2 * (0.25 - 0.75) / 48))


def test_it_keeps_no_responses_as_its_target():
    term = Temporal()
    term.set_target({IMAGE: torch.ones(1, 3, 2, 2)})  # levels.prepare never does; the video run sets them
    assert float(term({IMAGE: torch.zeros(1, 3, 2, 2)})[IMAGE]) == 0
    with pytest.raises(ValueError, match="2 warped frames but 1 weights"):
        term.set_previous([torch.zeros(1, 3, 2, 2)] * 2, [torch.ones(1, 1, 2, 2)])

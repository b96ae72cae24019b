"""Colour control: YIQ by hand, luminance matching, colour matching's moments, and the four options."""

import pytest
import torch

from stylelab.controls.colour import (
    RGB_TO_YIQ,
    YIQ_TO_RGB,
    Colour,
    Luminance,
    Match,
    Original,
    grey,
    luminance,
    match_colours,
    match_luminance,
    rgb_to_yiq,
    with_colours_of,
    yiq_to_rgb,
)
from stylelab.errors import StyleLabError


def pixel(r, g, b) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float64).view(3, 1, 1)


def test_yiq_of_red_and_white_by_hand():
    torch.testing.assert_close(
        rgb_to_yiq(pixel(1, 0, 0)).flatten(), torch.tensor([0.299, 0.595716, 0.211456], dtype=torch.float64)
    )
    # I and Q weights each sum to 0: grey has no chroma; Y's sum to 1
    torch.testing.assert_close(rgb_to_yiq(pixel(1, 1, 1)).flatten(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(YIQ_TO_RGB @ RGB_TO_YIQ, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(YIQ_TO_RGB[:, 0], torch.ones(3, dtype=torch.float64))  # Y adds to R, G, B alike


def test_round_trip():
    img = torch.rand(3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(img)), img)
    assert luminance(img).shape == (1, 5, 7) and grey(luminance(img)).shape == (3, 5, 7)
    torch.testing.assert_close(luminance(grey(luminance(img))), luminance(img))  # grey keeps its own Y


def test_the_results_luminance_with_the_contents_chroma_by_hand():
    # result grey 0.5 (Y = 0.5), content pure red: Y 0.299 -> 0.5 adds 0.201 to R, G and B; R clips at 1
    out = with_colours_of(pixel(0.5, 0.5, 0.5), pixel(1, 0, 0)).flatten()
    torch.testing.assert_close(out, torch.tensor([1.0, 0.201, 0.201], dtype=torch.float64))
    # a result already of the content's luminance gives the content back
    torch.testing.assert_close(
        with_colours_of(pixel(0.299, 0.299, 0.299), pixel(1, 0, 0)).flatten(),
        torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
    )


def test_match_luminance_by_hand():
    style, content = torch.tensor([[[0.0, 2.0]]]), torch.tensor([[[1.0, 1.5]]])  # mu 1, sigma 1 / mu 1.25, 0.25
    torch.testing.assert_close(match_luminance(style, content), torch.tensor([[[1.0, 1.5]]]))


@pytest.mark.parametrize("method", ["pca", "chol", "sym"])
def test_match_colours_gives_the_contents_mean_and_covariance(method):
    gen = torch.Generator().manual_seed(0)
    style = torch.rand(3, 20, 30, generator=gen, dtype=torch.float64)
    mix = torch.tensor([[0.05, 0.01, 0.0], [0.01, 0.04, 0.01], [0.0, 0.01, 0.03]], dtype=torch.float64)
    content = 0.5 + torch.einsum("ij,jhw->ihw", mix, torch.randn(3, 20, 30, generator=gen, dtype=torch.float64))
    out = match_colours(style, content, method, eps=0.0)
    assert 0 < out.min() and out.max() < 1  # nothing clipped, so the moments must be exact
    x, c = out.reshape(3, -1), content.reshape(3, -1)
    torch.testing.assert_close(x.mean(1), c.mean(1))
    torch.testing.assert_close(torch.cov(x, correction=0), torch.cov(c, correction=0))


def test_the_four_options():
    content, style = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    assert Colour().prepare(content, [style]) == (content, [style])
    c, (s,) = Luminance().prepare(content, [style])
    assert torch.equal(c[0], c[1]) and torch.equal(s[1], s[2])  # grey: Y in all three channels
    torch.testing.assert_close(luminance(s).mean(), luminance(content).mean())
    torch.testing.assert_close(luminance(s).std(correction=0), luminance(content).std(correction=0))
    result = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(Original().finish(result, content[None]), with_colours_of(result, content[None]))
    assert Original().prepare(content, [style]) == (content, [style]) and Colour().finish(result, content) is result
    _, (matched,) = Match("sym").prepare(content, [style])
    assert matched.shape == style.shape and not torch.equal(matched, style)
    with pytest.raises(StyleLabError, match="colour.method must be one of pca, chol, sym, not 'lab'"):
        Match("lab")
    assert Colour().seen(result) is result and Original().seen(result) is result and Match().seen(result) is result


def test_luminance_runs_see_only_the_luminance():
    # two images with the same Y and different chroma look the same to the loss
    x = torch.rand(1, 3, 6, 6)
    yiq = rgb_to_yiq(x)
    other = yiq_to_rgb(torch.cat([yiq[:, :1], yiq[:, 1:] + torch.tensor([0.1, -0.05])[None, :, None, None]], 1))
    seen = Luminance().seen(x)
    torch.testing.assert_close(seen, Luminance().seen(other))
    assert torch.equal(seen[:, 0], seen[:, 1]) and torch.equal(seen[:, 1], seen[:, 2])
    torch.testing.assert_close(seen[:, :1], yiq[:, :1])
    # so the gradient has no chroma: at each pixel it is a multiple of Y's row of the YIQ matrix
    x.requires_grad_(True)
    weights = torch.randn(1, 3, 6, 6)
    (Luminance().seen(x) * weights).sum().backward()
    expected = RGB_TO_YIQ[0][None, :, None, None] * weights.sum(1, keepdim=True)
    torch.testing.assert_close(x.grad, expected.to(x.grad.dtype))

import pytest
import torch

from stylelab.losses import StyleTransferLoss, content_loss, gram, style_layer_loss, tv_loss


def test_gram_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # N=2 filters, M=2 positions
    torch.testing.assert_close(gram(f), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]))


def test_content_loss_is_half_sum_of_squares():
    f = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    p = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    assert content_loss(f, p).item() == pytest.approx(0.5 * (1 + 4 + 4))


def test_style_layer_loss_by_hand():
    g = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]])
    a = torch.zeros(1, 2, 2)
    # (25 + 121 + 121 + 625) / (4 * N^2 * M^2) with N = M = 2
    assert style_layer_loss(g, a, n=2, m=2).item() == pytest.approx(892 / 64)


def test_tv_loss_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    # vertical: (2-0)^2 + (4-1)^2 = 13; horizontal: (1-0)^2 + (4-2)^2 = 5
    assert tv_loss(x).item() == pytest.approx(18.0)


def test_total_combines_weighted_terms_exactly():
    gen = torch.Generator().manual_seed(0)
    content = {"a": torch.randn(1, 2, 2, 2, generator=gen)}
    style = {"b": torch.randn(1, 3, 2, 3, generator=gen), "c": torch.randn(1, 2, 1, 2, generator=gen)}
    loss = StyleTransferLoss(content, style, {"a": 1.0}, {"b": 0.25, "c": 0.75}, alpha=2.0, beta=10.0, tv_weight=0.5)
    feats = {
        "a": torch.randn(1, 2, 2, 2, generator=gen),
        "b": torch.randn(1, 3, 2, 3, generator=gen),
        "c": torch.randn(1, 2, 1, 2, generator=gen),
    }
    image = torch.rand(1, 3, 4, 4, generator=gen)
    terms = loss(feats, image)

    lc = 0.5 * ((feats["a"] - content["a"]) ** 2).sum()
    e_b = ((gram(feats["b"]) - gram(style["b"])) ** 2).sum() / (4 * 3**2 * 6**2)
    e_c = ((gram(feats["c"]) - gram(style["c"])) ** 2).sum() / (4 * 2**2 * 2**2)
    tv = tv_loss(image)
    torch.testing.assert_close(terms.content_layers["a"], lc)
    torch.testing.assert_close(terms.style_layers["b"], e_b)
    torch.testing.assert_close(terms.style_layers["c"], e_c)
    torch.testing.assert_close(terms.style, 0.25 * e_b + 0.75 * e_c)
    torch.testing.assert_close(terms.weighted_content, 2.0 * lc)
    torch.testing.assert_close(terms.weighted_style, 10.0 * (0.25 * e_b + 0.75 * e_c))
    torch.testing.assert_close(terms.total, 2.0 * lc + 10.0 * (0.25 * e_b + 0.75 * e_c) + 0.5 * tv)
    scalars = terms.scalars()
    assert scalars["loss/style/b"] == pytest.approx(e_b.item())
    assert scalars["loss/content/a"] == pytest.approx(lc.item())
    assert scalars["loss/tv"] == pytest.approx(tv.item())


def test_loss_is_zero_at_the_targets():
    f = {"x": torch.rand(1, 4, 3, 3)}
    loss = StyleTransferLoss(f, f, {"x": 1.0}, {"x": 1.0}, alpha=1.0, beta=1.0)
    assert loss(f, torch.zeros(1, 3, 3, 3)).total.item() == 0.0


def test_gram_is_the_same_for_channels_last_memory():
    f = torch.randn(2, 8, 5, 7, generator=torch.Generator().manual_seed(4))
    nhwc = f.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gram(nhwc), gram(f))
    expected = torch.einsum("bihw,bjhw->bij", f, f)
    torch.testing.assert_close(gram(f), expected)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradient_is_exact(channels_last):
    f = torch.randn(1, 4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(gram, (f,))

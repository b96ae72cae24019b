"""The Objective: weighted sum of named terms, the tags it logs, zero-weight terms, a term of one's own."""

import pytest
import torch

from stylelab.errors import StyleLabError
from stylelab.losses import (
    IMAGE,
    FeatureReconstruction,
    GramLoss,
    Objective,
    Term,
    TotalVariation,
    content_loss,
    gram,
    tv_loss,
)


def test_total_combines_weighted_terms_exactly():
    gen = torch.Generator().manual_seed(0)
    content = {"a": torch.randn(1, 2, 2, 2, generator=gen)}
    style = {"b": torch.randn(1, 3, 2, 3, generator=gen), "c": torch.randn(1, 2, 1, 2, generator=gen)}
    terms = {
        "content": FeatureReconstruction({"a": 1.0}),
        "style": GramLoss({"b": 0.25, "c": 0.75}),
        "tv": TotalVariation(),
    }
    terms["content"].set_target(content)
    terms["style"].set_target(style)
    objective = Objective(terms, {"content": 2.0, "style": 10.0, "tv": 0.5})
    feats = {
        "a": torch.randn(1, 2, 2, 2, generator=gen),
        "b": torch.randn(1, 3, 2, 3, generator=gen),
        "c": torch.randn(1, 2, 1, 2, generator=gen),
    }
    image = torch.rand(1, 3, 4, 4, generator=gen)
    ev = objective(feats, image)

    lc = 0.5 * ((feats["a"] - content["a"]) ** 2).sum()
    e_b = ((gram(feats["b"]) - gram(style["b"])) ** 2).sum() / (4 * 3**2 * 6**2)
    e_c = ((gram(feats["c"]) - gram(style["c"])) ** 2).sum() / (4 * 2**2 * 2**2)
    tv = tv_loss(image)
    torch.testing.assert_close(ev.layers["content"]["a"], lc)
    torch.testing.assert_close(ev.layers["style"]["b"], e_b)
    torch.testing.assert_close(ev.layers["style"]["c"], e_c)
    torch.testing.assert_close(ev.values["style"], 0.25 * e_b + 0.75 * e_c)
    torch.testing.assert_close(ev.weighted["content"], 2.0 * lc)
    torch.testing.assert_close(ev.weighted["style"], 10.0 * (0.25 * e_b + 0.75 * e_c))
    torch.testing.assert_close(ev.total, 2.0 * lc + 10.0 * (0.25 * e_b + 0.75 * e_c) + 0.5 * tv)
    scalars = ev.scalars()
    assert scalars["loss/style/b"] == pytest.approx(e_b.item())
    assert scalars["loss/content/a"] == pytest.approx(lc.item())
    assert scalars["loss/tv"] == pytest.approx(tv.item()) and scalars["loss/weighted/tv"] == pytest.approx(
        0.5 * tv.item()
    )
    assert scalars["loss/tv/image"] == pytest.approx(tv.item())
    assert set(scalars) == {
        "loss/total",
        "loss/content",
        "loss/style",
        "loss/tv",
        "loss/weighted/content",
        "loss/weighted/style",
        "loss/weighted/tv",
        "loss/content/a",
        "loss/style/b",
        "loss/style/c",
        "loss/tv/image",
    }
    assert objective.layers == ["a", "b", "c"]  # what the extractor must give; "image" is not a layer


def test_loss_is_zero_at_the_targets():
    f = {"x": torch.rand(1, 4, 3, 3)}
    terms = {"content": FeatureReconstruction({"x": 1.0}), "style": GramLoss({"x": 1.0})}
    for term in terms.values():
        term.set_target(f)
    assert Objective(terms, {"content": 1.0, "style": 1.0})(f, torch.zeros(1, 3, 3, 3)).total.item() == 0.0


def test_a_zero_weight_term_is_logged_but_takes_no_part():
    image = torch.rand(1, 3, 5, 5, requires_grad=True)
    objective = Objective({"tv": TotalVariation()}, {"tv": 0.0})
    ev = objective({}, image)
    assert ev.values["tv"].item() == pytest.approx(tv_loss(image).item()) and ev.values["tv"].grad_fn is None
    assert ev.total.item() == 0.0 and ev.weighted["tv"].item() == 0.0


class PixelMean(Term):
    """A term of one's own: reads the image and one layer, returns a value per layer."""

    def set_target(self, features):
        self.targets = {name: features[name].mean() for name in self.layers if name != IMAGE}

    def forward(self, features):
        return {name: (features[name].mean() - self.targets.get(name, 0.5)) ** 2 for name in self.layers}


def test_any_term_plugs_in_and_is_named_by_its_slot():
    feats = {"relu1_1": torch.full((1, 2, 2, 2), 3.0)}
    term = PixelMean({IMAGE: 1.0, "relu1_1": 2.0})
    term.set_target({"relu1_1": torch.full((1, 2, 2, 2), 1.0)})
    ev = Objective({"mine": term}, {"mine": 4.0})(feats, torch.full((1, 3, 2, 2), 0.25))
    # image: (0.25 - 0.5)^2 = 0.0625; relu1_1: (3 - 1)^2 = 4; value 0.0625 + 2 * 4; weighted 4x
    assert ev.scalars()["loss/mine/image"] == pytest.approx(0.0625)
    assert ev.scalars()["loss/mine/relu1_1"] == pytest.approx(4.0)
    assert ev.values["mine"].item() == pytest.approx(8.0625) and ev.total.item() == pytest.approx(32.25)


def test_a_term_of_ones_own_as_a_style_term_takes_one_style():
    term = PixelMean({"relu1_1": 1.0})
    term.set_targets([{"relu1_1": torch.full((1, 2, 2, 2), 2.0)}], [1.0])
    assert term.targets == {"relu1_1": 2.0}
    with pytest.raises(StyleLabError, match="^PixelMean compares against one style, not 2$"):
        term.set_targets([{"relu1_1": torch.ones(1, 2, 2, 2)}] * 2, [0.5, 0.5])


def test_content_loss_is_half_sum_of_squares():
    f = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    p = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)
    assert content_loss(f, p).item() == pytest.approx(0.5 * (1 + 4 + 4))


def test_tv_loss_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 4.0]]).view(1, 1, 2, 2)
    # vertical: (2-0)^2 + (4-1)^2 = 13; horizontal: (1-0)^2 + (4-2)^2 = 5
    assert tv_loss(x).item() == pytest.approx(18.0)


def test_a_term_is_responses_then_representation_then_score_per_layer():
    class Means(Term):
        def representation(self, f):  # (B, N, H, W) -> (B, N)
            return f.mean(dim=(2, 3))

        def score(self, means, target):
            return (means - target).pow(2).sum()

    term = Means({"a": 1.0, "b": 1.0})
    target = {"a": torch.tensor([[[[1.0, 3.0]], [[0.0, 0.0]]]]), "b": torch.full((1, 1, 2, 2), 2.0)}
    term.set_target(target)
    target["a"].add_(100.0)  # the extractor's in-place ReLUs may do this: the term kept a copy
    image = {"a": torch.tensor([[[[0.0, 0.0]], [[4.0, 2.0]]]]), "b": torch.zeros(1, 1, 2, 2)}
    values = term(image)
    # a: means (0, 3) against (2, 0): 4 + 9; b: mean 0 against 2: 4
    assert {k: float(v) for k, v in values.items()} == {"a": 13.0, "b": 4.0}
    # the built-in terms are the same three steps: content's representation is the responses themselves
    content = FeatureReconstruction({"a": 1.0})
    content.set_target({"a": torch.ones(1, 1, 1, 2)})
    assert float(content({"a": torch.zeros(1, 1, 1, 2)})["a"]) == 1.0  # 1/2 (1 + 1)
    with pytest.raises(NotImplementedError, match="defines neither score nor forward"):
        Term({"a": 1.0})(image)

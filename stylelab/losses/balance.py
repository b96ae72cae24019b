"""The style weight a network calls for when loss.beta is left null, and the run's weights it sets.

Each kind of weights file has its rule (docs/numbers.md, "What alpha and beta mean"): torchvision's the tutorial's
fixed beta, Caffe's and MatConvNet's a rule measured on the network's own responses before the first step,
stylelab-normalize's the paper's alpha/beta. `balance` applies a rule to an objective at the run's final size
(coarse to fine: its last level's); `restore` sets what it chose again (a resumed run reads it from its checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger("stylelab")


@dataclass(frozen=True)
class Balance:
    """The style term's weight a kind of weights calls for when loss.beta is left null (alpha being 1): a fixed
    beta where a published recipe exists, or the rule beta = ratio * content(0) / style(0), the terms'
    values for an image whose responses are all zero (the energies of their targets), taken before the first
    step. Activations on another scale change content(0) and style(0) together, so the rule follows them.

    per_layer: the rule also evens out the style layers first, w_l' proportional to w_l / E_l(0), so that every
    layer's target weighs the same (w_l' E_l(0) equal for equal w_l), as the paper's normalised network makes
    them; the w_l' sum to what the w_l summed to. On an unnormalised network the layers' target energies span
    many orders of magnitude (the stand-in VGG16: from 2.6e5 at relu1_1 to 0.1 at relu5_1), and with equal w_l
    the deep layers, which carry the strokes, have no say."""

    beta: float | None = None
    ratio: float | None = None
    per_layer: bool = False
    source: str = ""

    def layer_weights(self, layer_weights: dict[str, float], at_zero: dict[str, float]) -> dict[str, float]:
        """The style layers' weights as this balance evens them out (as they are without per_layer, or where a
        layer's target is all zero)."""
        if not self.per_layer or self.beta is not None or not all(at_zero[layer] > 0 for layer in layer_weights):
            return dict(layer_weights)
        scaled = {layer: w / at_zero[layer] for layer, w in layer_weights.items()}
        total, new = sum(layer_weights.values()), sum(scaled.values())
        return {layer: w * total / new for layer, w in scaled.items()} if new > 0 else dict(layer_weights)

    def weight(self, content_at_zero: float, style_at_zero: float) -> float:
        if self.beta is not None:
            return self.beta
        if content_at_zero <= 0 or style_at_zero <= 0:
            return 1.0  # no content term (a texture): beta only scales the one term there is
        return self.ratio * content_at_zero / style_at_zero


# What each kind of file calls for (docs/numbers.md, "What alpha and beta mean").
BALANCES = {
    "torchvision": Balance(
        beta=1.032e9, source="the PyTorch tutorial's weights (content 1, style 1e6) in the paper's units at 512 px"
    ),
    "caffe": Balance(
        ratio=3.0,
        per_layer=True,
        source="w_l E_l(0) equal across the style layers, then beta * "
        "style(0) = 3 * content(0); measured on a trained Caffe-input VGG16",
    ),
    "matconvnet": Balance(
        ratio=3.0,
        per_layer=True,
        source="w_l E_l(0) equal across the style layers, then beta * style(0) = 3 * content(0), as for Caffe's input",
    ),
}
PAPER = Balance(beta=1e3, source="the paper's alpha/beta = 1e-3, for its normalised network")


def rule_for(weights) -> Balance:
    """The rule a network's weights (models.formats.Weights) call for, as their format is their preprocessing."""
    return PAPER if weights.normalised else BALANCES[weights.format]


def balance(objective, balance, features, content: torch.Tensor) -> dict[str, float]:
    """The weights of the style terms left null, as the network's weights call for (Balance): a fixed
    beta, or beta = ratio * content(0) / style(0) from this level's targets (their values at all-zero responses,
    the weighted content terms' summed), after evening out the style layers' weights where the balance does.
    Returns what it set: {term: weight} and, for layer weights it changed, {"term/layer": w_l}."""
    with torch.no_grad():
        at_zero = objective.at_zero(features(content), content)  # {term: {layer: value}}

    def total(name: str) -> float:
        return sum(objective.terms[name].layers[layer] * value for layer, value in at_zero[name].items())

    content_at_zero = sum(
        objective.weights[name] * total(name)
        for name in objective.terms
        if objective.targets[name] == "content" and objective.weights[name]
    )
    out = {}
    for name in [name for name, weight in objective.weights.items() if weight is None]:
        evened = balance.layer_weights(objective.terms[name].layers, at_zero[name])
        if evened != objective.terms[name].layers:
            out.update({f"{name}/{layer}": w for layer, w in evened.items()})
        out[name] = balance.weight(content_at_zero, sum(w * at_zero[name][layer] for layer, w in evened.items()))
    restore(objective, out)
    if balance.beta is None:
        log.info(
            ", ".join(f"the {name} weight is {w:.4g}" for name, w in out.items() if "/" not in name)
            + f" ({balance.source})"
        )
    return out


def restore(objective, balanced: dict[str, float]) -> None:
    """Set the weights a balance chose (a checkpoint's, or balance's own): term weights and "term/layer" ones."""
    for key, weight in balanced.items():
        name, _, layer = key.partition("/")
        if layer:
            objective.terms[name].layers[layer] = weight
        else:
            objective.weights[name] = weight

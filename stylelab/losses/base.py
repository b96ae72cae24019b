"""The protocol every loss term follows, and the Objective that sums weighted terms.

A term reads the responses of some layers, by name, and scores them per layer against targets it keeps,
in three steps: responses -> representation -> score.

    term.layers               {layer: w_l}: the values it returns, and how they are weighted
    term.reads                the network layers it reads (by default the keys of layers but "image")
    term.response(f, l)       what it scores at layer l: f[l] (the Laplacian term: the image's, pooled)
    term.representation(r)    what it compares of a response: r itself (content), its Gram matrix (style), ...
    term.score(rep, target)   one unweighted value (L_content,l for content, E_l for style)
    term.set_target(f)        f = {layer: (1, N, H, W)}: keeps the representation of its target image
    term(f)                   -> {layer: score(representation(response(f, l)), target_l)}
    term.start_step(s)        called before the evaluations of step s (terms that draw random numbers)

A new term defines representation and score (or forward, for anything else); the style terms add blending
and regions (losses/style.py).

"image" is a pseudo-layer: the image itself, (B, 3, H, W); total variation and the Laplacian term read it.
The Objective holds named terms, their weights and what each compares against (its target: the content,
the style, or nothing), and one evaluation gives
    value_t = sum_l w_l term_t(f)[l],   total = sum_t weight_t * value_t
TensorBoard tags, HParams, the progress bar and the summaries are made from these names, so a new term
needs no edit anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import get_args

import torch
import torch.nn as nn

from stylelab.choices import Target
from stylelab.errors import StyleLabError

IMAGE = "image"  # the pseudo-layer that holds the image itself
TARGETS: tuple[str, ...] = get_args(Target)


class Term(nn.Module):
    """A loss term: responses of its layers -> one unweighted value per layer."""

    def __init__(self, layers: Mapping[str, float]):
        super().__init__()
        self.layers: dict[str, float] = {name: float(w) for name, w in layers.items()}
        self.targets: dict = {}  # layer -> the target image's representation (set_target)

    @property
    def reads(self) -> list[str]:
        """The network layers whose responses forward() needs (the pseudo-layer "image" is always there)."""
        return [name for name in self.layers if name != IMAGE]

    @property
    def min_side(self) -> int:
        """The smallest image side (pixels) this term can score; the network's own limit comes on top."""
        return 1

    def response(self, features: dict[str, torch.Tensor], layer: str) -> torch.Tensor:
        """What the term scores at `layer`: that layer's responses, (B, N, H, W)."""
        return features[layer]

    def representation(self, f: torch.Tensor):
        """A response -> what the term compares (default: the response itself)."""
        return f

    def score(self, representation, target) -> torch.Tensor:
        """One unweighted value from the image's representation and the target's (None: no target)."""
        raise NotImplementedError(f"{type(self).__name__} defines neither score nor forward")

    def set_target(self, features: dict[str, torch.Tensor]) -> None:
        """Keep the target image's representation per layer, from its responses."""
        with torch.no_grad():
            for name in self.layers:
                target = self.representation(self.response(features, name))
                # a copy: the extractor's in-place ReLUs may later overwrite the tensor it returned
                self.targets[name] = target.clone() if isinstance(target, torch.Tensor) else target

    def set_targets(
        self,
        styles: list[dict[str, torch.Tensor]],
        weights: list[float] | None = None,
        guides: list[dict] | None = None,
        style_guides: list[dict | None] | None = None,
    ) -> None:
        """A style term's targets from every style image's responses, blended by `weights` or, with `guides`,
        one per region of the generated image (StyleLoss). A term that knows neither compares against one
        style and takes no regions (default)."""
        if len(styles) > 1:
            raise StyleLabError(f"{type(self).__name__} compares against one style, not {len(styles)}")
        self.set_target(styles[0])

    def start_step(self, step: int) -> None:
        """Called before the evaluations of step `step` (and of the final image); default: nothing."""

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: self.score(self.representation(self.response(features, name)), self.targets.get(name))
            for name in self.layers
        }


def at_least_float32(f: torch.Tensor) -> torch.Tensor:
    # sums over M (up to 10^6 positions) need at least float32; float64 stays float64 (gradient checks)
    return f.float() if f.dtype in (torch.float16, torch.bfloat16) else f


@dataclass
class Evaluation:
    """One evaluation of the objective: per term its value (before its weight), weighted value and layers."""

    total: torch.Tensor
    values: dict[str, torch.Tensor]  # term -> sum_l w_l value_l
    weighted: dict[str, torch.Tensor]  # term -> weight * value
    layers: dict[str, dict[str, torch.Tensor]]  # term -> layer -> value_l (unweighted)
    _scalars: dict[str, float] | None = field(default=None, repr=False, compare=False)

    def detached(self) -> "Evaluation":
        return Evaluation(
            self.total.detach(),
            {k: v.detach() for k, v in self.values.items()},
            {k: v.detach() for k, v in self.weighted.items()},
            {k: {layer: v.detach() for layer, v in per_layer.items()} for k, per_layer in self.layers.items()},
        )

    def scalars(self) -> dict[str, float]:
        """Flat {tag: value} for logging, with one device sync for all values:
        loss/total, loss/<term>, loss/weighted/<term>, loss/<term>/<layer>. Read once: every observer of the
        step gets the same dict (a copy), so the step pays one sync however many watch it."""
        if self._scalars is None:
            self._scalars = self._read()
        return dict(self._scalars)

    def _read(self) -> dict[str, float]:
        tags = {"loss/total": self.total}
        tags.update({f"loss/{k}": v for k, v in self.values.items()})
        tags.update({f"loss/weighted/{k}": v for k, v in self.weighted.items()})
        for k, per_layer in self.layers.items():
            tags.update({f"loss/{k}/{layer}": v for layer, v in per_layer.items()})
        values = torch.stack([v.detach().float().reshape(()) for v in tags.values()]).cpu().tolist()
        return dict(zip(tags, values))


class Objective(nn.Module):
    """sum_t weight_t * term_t. A term whose weight is 0 is still evaluated, for the logs, but without
    gradient and outside the total.

    targets: per term what it compares against (content | style | none, default none): the level that
    prepares the images sets each term's target from those images' responses.
    """

    def __init__(
        self, terms: Mapping[str, Term], weights: Mapping[str, float], targets: Mapping[str, str] | None = None
    ):
        super().__init__()
        if set(terms) != set(weights):
            raise ValueError(f"terms {sorted(terms)} and weights {sorted(weights)} must name the same terms")
        self.terms = nn.ModuleDict(dict(terms))
        # a weight of None is set before the first evaluation (the run: the network's own balance)
        self.weights = {name: None if weights[name] is None else float(weights[name]) for name in terms}
        self.targets = {name: str((targets or {}).get(name, "none")) for name in terms}
        for name, target in self.targets.items():
            if target not in TARGETS:
                raise StyleLabError(
                    f"the target of loss term {name} must be one of {', '.join(TARGETS)}, not {target!r}"
                )

    @property
    def layers(self) -> list[str]:
        """The network layers the terms read, in order of first mention."""
        return list(dict.fromkeys(name for term in self.terms.values() for name in term.reads))

    def start_step(self, step: int) -> None:
        for term in self.terms.values():
            term.start_step(step)

    def at_zero(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> dict[str, dict[str, float]]:
        """Each term's value per layer (before any weight) for responses and an image that are all zero, as big as
        these: how large its target is (1/2 sum P^2 for the content, sum A^2 / (4 N^2 M^2) for the Gram style)."""
        zeros = {name: torch.zeros_like(f) for name, f in {**features, IMAGE: image}.items()}
        with torch.no_grad():
            return {name: {layer: float(v) for layer, v in term(zeros).items()} for name, term in self.terms.items()}

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> Evaluation:
        unset = [name for name, weight in self.weights.items() if weight is None]
        if unset:
            raise ValueError(f"the weight of term {unset[0]} is not set")
        features = {**features, IMAGE: image}
        zero = image.new_zeros((), dtype=torch.float32)
        total, values, weighted, layers = zero, {}, {}, {}
        for name, term in self.terms.items():
            weight = self.weights[name]
            with torch.set_grad_enabled(torch.is_grad_enabled() and weight != 0):
                per_layer = term(features)
            values[name] = sum((term.layers[layer] * per_layer[layer] for layer in term.layers), zero)
            weighted[name] = weight * values[name]
            layers[name] = per_layer
            if weight != 0:
                total = total + weighted[name]
        return Evaluation(total, values, weighted, layers)

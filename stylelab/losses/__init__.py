"""Loss terms: a term reads named layers and returns a value per layer; the Objective sums weighted terms.

    from stylelab.losses import gram, content_loss, style_layer_loss      # the paper's formulas
    from stylelab.losses import Term, Objective                           # to write a term of your own
"""

from stylelab.losses.base import IMAGE, Evaluation, Objective, Term
from stylelab.losses.content import FeatureReconstruction, content_loss
from stylelab.losses.regularizers import TotalVariation, tv_loss
from stylelab.losses.style import GramLoss, MeanStdLoss, SlicedW2Loss, StyleLoss, W2Loss, gram, style_layer_loss

__all__ = [
    "IMAGE", "Evaluation", "FeatureReconstruction", "GramLoss", "MeanStdLoss", "Objective", "SlicedW2Loss",
    "StyleLoss", "Term", "TotalVariation", "W2Loss", "content_loss", "gram", "style_layer_loss", "tv_loss",
]

"""Loss terms: a term reads named layers and returns a value per layer; the Objective sums weighted terms.

from stylelab.losses import gram, content_loss, style_layer_loss      # the paper's formulas
from stylelab.losses import Term, Objective                           # to write a term of your own
from stylelab.losses import Laplacian                                 # Li et al. 2017
"""

from stylelab.losses.base import IMAGE, Evaluation, Objective, Term
from stylelab.losses.content import FeatureReconstruction, content_loss
from stylelab.losses.laplacian import Laplacian, pooled_laplacian
from stylelab.losses.regularizers import TotalVariation, tv_loss
from stylelab.losses.sliced import SlicedW2Loss
from stylelab.losses.style import GramLoss, MeanStdLoss, StyleLoss, W2Loss, gram, style_layer_loss

__all__ = [
    "IMAGE",
    "Evaluation",
    "FeatureReconstruction",
    "GramLoss",
    "Laplacian",
    "MeanStdLoss",
    "Objective",
    "SlicedW2Loss",
    "StyleLoss",
    "Term",
    "TotalVariation",
    "W2Loss",
    "content_loss",
    "gram",
    "pooled_laplacian",
    "style_layer_loss",
    "tv_loss",
]

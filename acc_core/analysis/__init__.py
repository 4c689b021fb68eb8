"""Analyses of embeddings: pure functions over arrays (DESIGN.md, "Analysis").

- `mi`: mutual information I(U; G) with Gaussian noise (the ABC supplement S1-S2), MINE, and the
  2-D histogram estimate (the ACC paper appendix B);
- `project`: PCA and UMAP views, with an on-disk cache;
- `probe`: per-factor classifiers on noisy embeddings (the ACC paper appendix B, the ABC supplement S1);
- `retrieval`: exact k nearest neighbours, per-factor agreement, class grids (the ACC paper 4.2);
- `loss_mc`: the ACC loss of random uniform sets vs set size and dimension (the ACC paper appendix D).

Nothing here sees a model or a trainer; `acc_core.evaluate` feeds these from the run store.
"""

from acc_core.analysis.loss_mc import random_loss_curve
from acc_core.analysis.mi import (
    default_sigmas,
    entropy,
    gaussian_channel_mi,
    gaussian_channel_mi_multi,
    histogram_mi,
    mine_mi,
    noise_sweep,
)
from acc_core.analysis.probe import probe_accuracy
from acc_core.analysis.project import cached_projection, pca, umap
from acc_core.analysis.retrieval import class_retrieval_grid, factor_agreement, knn

__all__ = [
    "cached_projection",
    "class_retrieval_grid",
    "default_sigmas",
    "entropy",
    "factor_agreement",
    "gaussian_channel_mi",
    "gaussian_channel_mi_multi",
    "histogram_mi",
    "knn",
    "mine_mi",
    "noise_sweep",
    "pca",
    "probe_accuracy",
    "random_loss_curve",
    "umap",
]

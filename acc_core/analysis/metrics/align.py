"""Named alignments of a code before the axis-aligned metrics.

MIG, SAP, DCI disentanglement/completeness, modularity and the FactorVAE score assume one factor
per code axis. ACC and LORD codes are defined only up to a rotation (the loss sees distances or
angles), so they score low by construction. An alignment rotates the code first and says so:
- `none`: the code as the network gives it;
- `pca`: the principal axes of the sample (a rotation: decorrelated, ordered by variance);
- `ica`: FastICA's independent components (a linear unmixing, whitened; seed 0).
"""

from __future__ import annotations

import warnings

import numpy as np

ALIGNMENTS = ("none", "pca", "ica")


def align(codes: np.ndarray, how: str = "none", *, seed: int = 0) -> np.ndarray:
    """codes (N, D) -> (N, D') in the named basis (D' = D, fewer only for a rank-deficient code)."""
    codes = np.asarray(codes, dtype=np.float64)
    if how == "none":
        return codes
    centred = codes - codes.mean(axis=0)
    if how == "pca":
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[s > 1e-9 * max(s.max(), 1e-300)].T
    if how == "ica":
        from sklearn.decomposition import FastICA

        rank = int(np.linalg.matrix_rank(centred))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings: the unmixing is still a basis
            return FastICA(n_components=max(1, rank), whiten="unit-variance", random_state=seed,
                           max_iter=400).fit_transform(centred)
    raise ValueError(f"unknown alignment {how!r}; choose one of {', '.join(ALIGNMENTS)}")

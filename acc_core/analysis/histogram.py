"""The ACC paper appendix B: I(U; G) for 2-D embeddings from a shared 2-D histogram."""

from __future__ import annotations

import numpy as np

from acc_core.analysis.arrays import as_embeddings, as_labels, entropy


def histogram_mi(u2d, g, *, bins: int | None = None) -> float:
    """The ACC paper appendix B: I(U; G) = H(U) − H(U | G) from a 2-D histogram, in nats.

    The appendix uses "a histogram with √N bins"; we read that as √N bins in all, i.e.
    round(N^(1/4)) equal-width bins per axis over the data's range (√N per axis would
    leave about one point per bin and bias I upwards). `bins` sets the per-axis count.
    The same bins serve every conditional distribution, so the bin-width terms of the
    differential entropies cancel and I is the discrete MI of (bin, G), always >= 0.
    """
    x = as_embeddings(u2d)
    if x.shape[1] != 2:
        raise ValueError(f"histogram_mi needs 2-D embeddings (N, 2), got {x.shape[1]} dimensions; project first (e.g. PCA).")
    g = as_labels(g)
    if len(g) != len(x):
        raise ValueError(f"got {len(g)} labels for {len(x)} embeddings; pass one label per row.")
    nb = max(2, int(round(len(x) ** 0.25))) if bins is None else int(bins)
    if nb < 1:
        raise ValueError(f"bins must be >= 1, got {bins}.")
    cell = np.zeros(len(x), dtype=np.int64)
    for a in range(2):  # equal-width bins over each axis's range, shared by all conditionals
        lo, hi = x[:, a].min(), x[:, a].max()
        if hi <= lo:
            b = np.zeros(len(x), np.int64)
        else:
            b = np.minimum(((x[:, a] - lo) / (hi - lo) * nb).astype(np.int64), nb - 1)  # (N,)
        cell = cell * nb + b
    h_u = entropy(cell)
    h_u_given_g = 0.0
    for v in np.unique(g):
        m = g == v
        h_u_given_g += m.mean() * entropy(cell[m])
    return max(0.0, h_u - h_u_given_g)

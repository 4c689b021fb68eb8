"""Mutual information gap (Chen et al. 2018; disentanglement_lib mig.py).

Per factor, the gap between the two code dimensions that know most about it, normalised by the
factor's entropy, averaged over factors: (I(z_top1; v) - I(z_top2; v)) / H(v). Assumes one
factor per code axis, so a rotated code scores low.
"""

from __future__ import annotations

import numpy as np

from acc_core.analysis.metrics._common import NUM_BINS, check, discretize, entropies, mi_matrix


def mig(codes, factors, *, num_bins: int = NUM_BINS) -> float:
    """codes (N, D), factors (N, K) -> MIG in [0, 1]. Needs D >= 2."""
    codes, factors = check(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs a code of at least 2 dimensions")
    m = mi_matrix(discretize(codes, num_bins), factors)  # (D, K)
    h = entropies(factors)  # (K,)
    keep = h > 0
    top = np.sort(m, axis=0)[::-1]  # (D, K), descending
    return float(np.mean((top[0, keep] - top[1, keep]) / h[keep]))

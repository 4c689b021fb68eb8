"""Shared pieces of the disentanglement metrics (disentanglement_lib evaluation/metrics/utils.py).

Every metric sees arrays only: `codes` float (N, D), `factors` int (N, K) of value indices.
The reference defaults: 20 equal-width bins per code dimension, 10,000 training and 5,000
test points (here: a fixed 2:1 split of whatever sample is given), fixed seeds.
"""

from __future__ import annotations

import os

import numpy as np

NUM_BINS = 20  # disentanglement_lib's histogram_discretizer.num_bins
SEED = 0


def check(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float64 codes and (N, K) int64 factors, or a clear error."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"metrics need codes (N, D) and factors (N, K) with the same N; got "
                         f"{codes.shape} and {factors.shape}")
    if len(codes) < 20:
        raise ValueError(f"metrics need at least 20 points; got {len(codes)}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinity")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError("factors must be integer value indices")
    return codes, factors.astype(np.int64)


def discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """(N, D) -> (N, D) bin indices: each dimension cut into `num_bins` equal-width bins
    (np.digitize against np.histogram's left edges, as the reference does)."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], num_bins)[1][:-1]
        out[:, d] = np.digitize(codes[:, d], edges)
    return out


def _relabel(x: np.ndarray) -> tuple[np.ndarray, int]:
    _, inv = np.unique(x, return_inverse=True)
    return inv.reshape(-1), int(inv.max()) + 1


def discrete_mi(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two discrete label vectors (N,): sklearn's mutual_info_score."""
    a, na = _relabel(a)
    b, nb = _relabel(b)
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(max(0.0, (joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum()))


def mi_matrix(binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) discrete mutual information between every binned code dimension and factor."""
    return np.array([[discrete_mi(binned[:, d], factors[:, k]) for k in range(factors.shape[1])]
                     for d in range(binned.shape[1])])


def entropies(factors: np.ndarray) -> np.ndarray:
    """(K,) discrete entropy of each factor in nats."""
    return np.array([discrete_mi(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])


def split(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed 2:1 train/test split of N points (the reference's 10,000 / 5,000)."""
    perm = np.random.default_rng(seed).permutation(n)
    cut = (2 * n) // 3
    return perm[:cut], perm[cut:]


def workers() -> int:
    """Threads for the classifier fits: liblinear and the tree ensembles release the GIL, so one
    thread per core (at most 8; ACC_METRIC_THREADS overrides). The scores do not depend on it."""
    env = os.environ.get("ACC_METRIC_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def varying(factors: np.ndarray) -> np.ndarray:
    """(K,) bool: factors that take more than one value in the sample (a constant factor has
    no information to find)."""
    return np.array([len(np.unique(factors[:, k])) > 1 for k in range(factors.shape[1])])


def logistic_regression(seed: int = SEED):
    """disentanglement_lib's `LogisticRegression()` as it ran there: the scikit-learn of its time
    (before 0.22) defaulted to liblinear, one-vs-rest; today's default (lbfgs, multinomial) is
    another classifier and 3x slower on 10,000 x 64-D codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=seed))

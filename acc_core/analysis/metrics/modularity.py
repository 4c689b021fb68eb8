"""Modularity and explicitness (Ridgeway & Mozer 2018; disentanglement_lib
modularity_explicitness.py).

Modularity: from the (D, K) matrix of discrete mutual information (20-bin codes), each code
dimension should depend on one factor: 1 - sum_{k != k*} m_dk^2 / (m_dk*^2 (K - 1)), averaged over
dimensions (0 for a dimension that knows nothing). Axis-aligned.
Explicitness: per factor, a one-vs-rest logistic regression on the standardised code, scored by
its test ROC-AUC (averaged over classes), then over factors. It does not care how the code is
rotated (a linear classifier sees every direction).
"""

from __future__ import annotations

import warnings

import numpy as np

from acc_core.analysis.metrics._common import (NUM_BINS, check, discretize, logistic_regression,
                                              mi_matrix, split, varying, workers)


def modularity_from_mi(m: np.ndarray) -> float:
    """m (D, K) mutual information -> modularity in [0, 1]."""
    if m.shape[1] < 2:
        return float("nan")  # one factor: every dimension is trivially modular
    sq = np.square(m)
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (sq.sum(axis=1) - top) / (top * (m.shape[1] - 1.0))
    score = 1.0 - delta
    score[top == 0] = 0.0
    return float(np.mean(score))


def _explicitness(x_tr, y_tr, x_te, y_te) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import label_binarize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = logistic_regression().fit(x_tr, y_tr)
    classes = clf.classes_

    def auc(x, y):
        p = clf.predict_proba(x)  # (n, C)
        onehot = label_binarize(y, classes=classes)
        if len(classes) == 2:
            onehot = np.hstack([1 - onehot, onehot])
        present = onehot.sum(0) > 0  # roc_auc needs both labels in each column
        present &= onehot.sum(0) < len(y)
        return float(roc_auc_score(onehot[:, present], p[:, present], average="macro"))

    return auc(x_tr, y_tr), auc(x_te, y_te)


def modularity_explicitness(codes, factors, *, num_bins: int = NUM_BINS) -> dict:
    """codes (N, D), factors (N, K) -> {modularity, explicitness, explicitness_train}."""
    codes, factors = check(codes, factors)
    factors = factors[:, varying(factors)]
    train, test = split(len(codes))
    m = mi_matrix(discretize(codes[train], num_bins), factors[train])
    mean, std = codes[train].mean(0), codes[train].std(0)
    std[std == 0] = 1.0
    z = (codes - mean) / std
    from joblib import Parallel, delayed

    # one factor's fit per thread (liblinear releases the GIL)
    tr, te = zip(*Parallel(n_jobs=workers(), prefer="threads")(
        delayed(_explicitness)(z[train], factors[train, k], z[test], factors[test, k])
        for k in range(factors.shape[1])))
    return {"modularity": modularity_from_mi(m), "explicitness": float(np.mean(te)),
            "explicitness_train": float(np.mean(tr))}

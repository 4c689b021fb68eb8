"""Separated attribute predictability (Kumar et al. 2018; disentanglement_lib sap_score.py).

A score matrix (D, K): the test accuracy of a 1-D linear SVM (C = 0.01, balanced classes) that
predicts factor k from code dimension d alone; SAP is the mean over factors of the gap between
the best and second-best dimension. Axis-aligned by construction.
"""

from __future__ import annotations

import warnings

import numpy as np

from acc_core.analysis.metrics._common import check, split, varying, workers


def score_matrix(codes: np.ndarray, factors: np.ndarray, train, test) -> np.ndarray:
    """(D, K) test accuracy of one 1-D LinearSVC per (dimension, factor)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    from joblib import Parallel, delayed

    d_, k_ = codes.shape[1], factors.shape[1]

    def one(d, k):
        y_tr, y_te = factors[train, k], factors[test, k]
        if len(np.unique(y_tr)) < 2:
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # dual=False: the same problem solved in the primal, which for one feature and
            # thousands of points is twice as fast (the reference ran the dual, the default)
            clf = LinearSVC(C=0.01, class_weight="balanced", dual=False).fit(
                codes[train, d:d + 1], y_tr)
        return float(np.mean(clf.predict(codes[test, d:d + 1]) == y_te))

    # liblinear releases the GIL: one thread per core
    scores = Parallel(n_jobs=workers(), prefer="threads")(
        delayed(one)(d, k) for d in range(d_) for k in range(k_))
    return np.asarray(scores).reshape(d_, k_)


def sap(codes, factors) -> float:
    """codes (N, D), factors (N, K) -> SAP in [0, 1]. Needs D >= 2."""
    codes, factors = check(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("SAP needs a code of at least 2 dimensions")
    train, test = split(len(codes))
    m = score_matrix(codes, factors, train, test)[:, varying(factors)]
    top = np.sort(m, axis=0)
    return float(np.mean(top[-1] - top[-2]))

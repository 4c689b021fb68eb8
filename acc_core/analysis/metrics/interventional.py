"""The metrics that need batches with one factor held fixed: the FactorVAE score (Kim & Mnih
2018; disentanglement_lib factor_vae.py), the beta-VAE score (Higgins et al. 2017; beta_vae.py)
and IRS (Suter et al. 2019; irs.py).

The reference samples such batches from the dataset and embeds them per query. Here the codes of
a sample of the factor grid are encoded once, and every "batch with factor k fixed at value v" is
answered by index lookup among the sample's points with that value (with replacement where the
sample holds fewer than the batch size). Votes and training points come from the 2:1 split.
"""

from __future__ import annotations

import warnings

import numpy as np

from acc_core.analysis.metrics._common import (NUM_BINS, SEED, check, logistic_regression, split,
                                              varying)

BATCH = 64  # the reference's batch_size for both scores
NUM_TRAIN, NUM_EVAL = 10_000, 5_000  # votes / training points, as the reference
PRUNE_STD = 0.05  # FactorVAE: dimensions with a smaller global std are collapsed


class _Groups:
    """Index lookup: the sample's points with factor k at value v."""

    def __init__(self, factors: np.ndarray, idx: np.ndarray):
        self.by = [{int(v): idx[factors[idx, k] == v] for v in np.unique(factors[idx, k])}
                   for k in range(factors.shape[1])]

    def draw(self, rng, k: int, v: int, n: int) -> np.ndarray:
        pool = self.by[k][v]
        return rng.choice(pool, size=n, replace=len(pool) < n)


def factor_vae(codes, factors, *, num_train: int = NUM_TRAIN, num_eval: int = NUM_EVAL,
               batch_size: int = BATCH, seed: int = SEED) -> dict:
    """codes (N, D), factors (N, K) -> {score (eval accuracy), train_accuracy, active_dims}."""
    codes, factors = check(codes, factors)
    factors = factors[:, varying(factors)]
    k_ = factors.shape[1]
    var = codes.var(axis=0, ddof=1)  # (D,) global variances
    active = np.sqrt(var) >= PRUNE_STD
    if not active.any() or k_ < 2:
        return {"score": 0.0 if k_ >= 2 else float("nan"), "train_accuracy": 0.0,
                "active_dims": int(active.sum())}
    rng = np.random.default_rng(seed)
    train, test = split(len(codes), seed)

    def votes(idx, n):
        groups = _Groups(factors, idx)
        v = np.zeros((k_, int(active.sum())), dtype=np.int64)
        ks = rng.integers(k_, size=n)
        for k in range(k_):
            for _ in range(int((ks == k).sum())):
                val = rng.choice(list(groups.by[k]))
                batch = codes[groups.draw(rng, k, val, batch_size)][:, active]  # (B, D')
                v[k, np.argmin(batch.var(axis=0, ddof=1) / var[active])] += 1
        return v

    v_train, v_eval = votes(train, num_train), votes(test, num_eval)
    classifier = np.argmax(v_train, axis=0)  # (D',) the factor each dimension votes for
    cols = np.arange(v_train.shape[1])
    return {"score": float(v_eval[classifier, cols].sum() / v_eval.sum()),
            "train_accuracy": float(v_train[classifier, cols].sum() / v_train.sum()),
            "active_dims": int(active.sum())}


def beta_vae(codes, factors, *, num_train: int = NUM_TRAIN, num_eval: int = NUM_EVAL,
             batch_size: int = BATCH, seed: int = SEED) -> dict:
    """codes (N, D), factors (N, K) -> {score (eval accuracy), train_accuracy}: a logistic
    regression predicts which factor a batch of pairs shared from the mean |z1 - z2|."""
    from sklearn.exceptions import ConvergenceWarning

    codes, factors = check(codes, factors)
    factors = factors[:, varying(factors)]
    k_ = factors.shape[1]
    if k_ < 2:
        return {"score": float("nan"), "train_accuracy": float("nan")}
    rng = np.random.default_rng(seed)
    train, test = split(len(codes), seed)

    def points(idx, n):
        groups = _Groups(factors, idx)
        ks = rng.integers(k_, size=n)
        first = rng.choice(idx, size=(n, batch_size))  # (n, B)
        second = np.empty_like(first)
        for k in range(k_):
            rows = np.nonzero(ks == k)[0]
            vals = factors[first[rows], k]  # (r, B) the shared value of each pair
            for v in np.unique(vals):
                r, b = np.nonzero(vals == v)
                second[rows[r], b] = groups.draw(rng, k, int(v), len(r))
        z = codes.astype(np.float32)
        feats = np.concatenate([np.abs(z[first[i:i + 500]] - z[second[i:i + 500]]).mean(axis=1)
                                for i in range(0, n, 500)])  # (n, D), in chunks of 500 batches
        return feats.astype(np.float64), ks

    x_tr, y_tr = points(train, num_train)
    x_te, y_te = points(test, num_eval)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = logistic_regression(seed).fit(x_tr, y_tr)
    return {"score": float(clf.score(x_te, y_te)), "train_accuracy": float(clf.score(x_tr, y_tr))}


def irs(codes, factors, *, diff_quantile: float = 0.99, num_bins: int = NUM_BINS) -> dict:
    """codes (N, D), factors (N, K) -> {score, active_dims}: interventional robustness, the
    reference's `scalable_disentanglement_score` on 20-bin factors and non-constant dimensions."""
    from acc_core.analysis.metrics._common import discretize

    codes, factors = check(codes, factors)
    g = discretize(factors[:, varying(factors)].astype(np.float64), num_bins)  # (N, K)
    z = codes[:, codes.var(axis=0) > 0]  # (N, D') active dimensions
    if z.shape[1] == 0 or g.shape[1] == 0:
        return {"score": 0.0, "active_dims": 0}
    max_dev = np.max(np.abs(z - z.mean(axis=0)), axis=0)  # (D',)
    cum = np.zeros((z.shape[1], g.shape[1]))
    for i in range(g.shape[1]):
        values = np.unique(g[:, i])
        for v in values:
            zz = z[g[:, i] == v]
            cum[:, i] += np.quantile(np.abs(zz - zz.mean(axis=0)), q=diff_quantile, axis=0)
        cum[:, i] /= len(values)
    irs_matrix = 1.0 - cum / max_dev[:, None]
    per_dim = irs_matrix.max(axis=1)
    score = np.average(per_dim, weights=max_dev) if max_dev.sum() > 0 else per_dim.mean()
    return {"score": float(score), "active_dims": int(z.shape[1])}

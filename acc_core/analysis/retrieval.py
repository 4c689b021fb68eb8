"""Retrieval in embedding space: exact nearest neighbours, per-factor agreement, class grids.

The ACC paper section 4.2 / Figure 4 (right) and the ABC supplement Figure S7: for a query image of each
digit class, the nearest image of every class shows what the embedding isolated (style,
not identity). `factor_agreement` is the quantitative companion: how often a query's
nearest neighbours share each generative factor's value, against chance.

Similarities as in the loss (DESIGN.md): `l2sq` = −‖x−y‖², `l2` = −‖x−y‖, `cosine`.
Scores are similarities, so larger is nearer for all three.
"""

from __future__ import annotations

import numpy as np
import torch

from acc_core.analysis.arrays import as_embeddings, as_factors, as_labels

from acc_core.losses import SIMILARITIES


def _similarity_block(
    q: torch.Tensor, keys: torch.Tensor, key_sq: torch.Tensor, similarity: str
) -> torch.Tensor:
    """(B, E) queries vs (N, E) keys -> similarities (B, N)."""
    if similarity == "cosine":
        return q @ keys.T  # both rows already unit length
    d2 = ((q * q).sum(1, keepdim=True) + key_sq[None, :] - 2.0 * (q @ keys.T)).clamp_min_(0.0)  # (B, N)
    return -d2 if similarity == "l2sq" else -d2.sqrt_()


def knn(queries, keys, k: int, *, similarity: str = "l2sq", chunk: int = 4096, exclude_self=False):
    """Exact k nearest keys of every query: indices int64 (Q, k) and scores (Q, k), best first.

    Queries are processed `chunk` rows at a time, so memory stays at chunk x N scores.
    `exclude_self=True` drops key i from query i's list (queries are the keys, Q = N); an
    int array (Q,) names each query's own key index instead (queries are a subset of keys).
    Computation is float64 for float64 inputs, else float32, on data centred on the keys' mean.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; valid names: {', '.join(SIMILARITIES)}")
    dtype = torch.float64 if np.asarray(keys).dtype == np.float64 else torch.float32
    qn, kn = as_embeddings(queries), as_embeddings(keys)  # (Q, E), (N, E) float64
    if qn.shape[1] != kn.shape[1]:
        raise ValueError(
            f"queries have {qn.shape[1]} dimensions but keys have {kn.shape[1]}; embed both with the same run."
        )
    if isinstance(exclude_self, (bool, np.bool_)):
        own = torch.arange(len(qn)) if exclude_self else None
        if exclude_self and len(qn) != len(kn):
            raise ValueError("exclude_self=True needs the queries to be the keys (same length); pass each query's key index instead.")
    else:
        own = torch.from_numpy(np.asarray(exclude_self, dtype=np.int64).reshape(-1))
        if len(own) != len(qn):
            raise ValueError(f"exclude_self has {len(own)} indices for {len(qn)} queries; pass one key index per query.")
    avail = len(kn) - (own is not None)
    if not 1 <= k <= avail:
        raise ValueError(f"k must be between 1 and {avail} (the number of candidate keys), got {k}.")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}.")
    if similarity == "cosine":  # unit rows (a zero vector stays zero), in float64 before the cast
        qn = qn / np.maximum(np.linalg.norm(qn, axis=1, keepdims=True), 1e-12)
        kn = kn / np.maximum(np.linalg.norm(kn, axis=1, keepdims=True), 1e-12)
    else:  # distances are translation invariant; centring keeps ‖q‖²+‖k‖²−2q·k precise
        centre = kn.mean(0)
        qn, kn = qn - centre, kn - centre
    q, kt = torch.from_numpy(qn).to(dtype), torch.from_numpy(kn).to(dtype)  # (Q, E), (N, E)
    key_sq = (kt * kt).sum(1)  # (N,)
    out_idx = torch.empty(len(q), k, dtype=torch.int64)
    out_score = torch.empty(len(q), k, dtype=dtype)
    for start in range(0, len(q), chunk):
        sim = _similarity_block(q[start : start + chunk], kt, key_sq, similarity)  # (B, N)
        if own is not None:
            rows = torch.arange(len(sim))
            sim[rows, own[start : start + len(sim)]] = -torch.inf
        score, idx = sim.topk(k, dim=1)  # (B, k), sorted best first
        out_idx[start : start + len(sim)], out_score[start : start + len(sim)] = idx, score
    return out_idx.numpy(), out_score.numpy()


def factor_agreement(
    u, factors, k: int = 10, *, similarity: str = "l2sq", factor_names=None,
    n_queries: int | None = None, seed: int = 0,
) -> dict:
    """Per factor, the fraction of a query's k nearest neighbours (self excluded) sharing its value.

    Chance is the probability that a random *other* image shares the query's value,
    Σ_v n_v (n_v − 1) / (N (N − 1)) (= Σ_v p_v² up to the finite-N correction). Queries are
    all N embeddings, or a random `n_queries` of them (neighbours are always searched among
    all N). Returns {name: {"agreement", "chance"}} keyed by `factor_names` or column index.
    """
    x = as_embeddings(u)
    f = as_factors(factors, len(x))
    n = len(x)
    names = list(range(f.shape[1])) if factor_names is None else list(factor_names)
    if len(names) != f.shape[1]:
        raise ValueError(f"got {len(names)} factor names for {f.shape[1]} factor columns; pass one name per column.")
    if n < 2:
        raise ValueError("factor agreement needs at least 2 embeddings.")
    queries = np.arange(n)
    if n_queries is not None and n_queries < n:
        queries = np.sort(np.random.default_rng(seed).choice(n, size=max(1, int(n_queries)), replace=False))
    idx, _ = knn(x[queries], x, min(k, n - 1), similarity=similarity, exclude_self=queries)  # (Q, k)
    out = {}
    for j, name in enumerate(names):
        col = f[:, j]
        same = col[idx] == col[queries][:, None]  # (Q, k)
        counts = np.unique(col, return_counts=True)[1].astype(np.float64)
        chance = float((counts * (counts - 1)).sum() / (n * (n - 1)))
        out[name] = {"agreement": float(same.mean()), "chance": chance}
    return out


def class_retrieval_grid(
    u, labels, queries_per_class: int = 1, seed: int = 0, *, similarity: str = "l2sq",
    first: bool = False,
) -> np.ndarray:
    """The ACC paper Figure 4 (right): for a query of each class, its nearest image of every class.

    Classes are the sorted distinct labels c_0 < c_1 < ...; queries are drawn at random
    (`seed`), `queries_per_class` per class, or with `first` the first images of each class
    in the given order (the paper's figure: the first test image of each digit). Returns int64 (C * q, C) image indices: row
    r is query r // q's class (class-major order), column c the nearest image of class c_c;
    the query itself sits in its own class's column, as the boxed diagonal of the figure.
    """
    x = as_embeddings(u)
    y = as_labels(labels)
    if len(y) != len(x):
        raise ValueError(f"got {len(y)} labels for {len(x)} embeddings; pass one label per row.")
    if queries_per_class < 1:
        raise ValueError(f"queries_per_class must be >= 1, got {queries_per_class}.")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < queries_per_class:
        raise ValueError(f"class {classes[counts.argmin()]} has only {counts.min()} images for {queries_per_class} queries per class; ask for fewer.")
    rng = np.random.default_rng(seed)
    queries = np.concatenate(
        [np.flatnonzero(y == c)[:queries_per_class] if first else
         rng.choice(np.flatnonzero(y == c), queries_per_class, replace=False) for c in classes]
    )  # (C * q,) class-major
    grid = np.empty((len(queries), len(classes)), dtype=np.int64)
    for j, c in enumerate(classes):
        members = np.flatnonzero(y == c)  # (n_c,)
        idx, _ = knn(x[queries], x[members], 1, similarity=similarity)  # (C*q, 1) within class c
        grid[:, j] = members[idx[:, 0]]
    own_col = np.searchsorted(classes, y[queries])  # (C*q,)
    grid[np.arange(len(queries)), own_col] = queries  # the query is its own nearest (ties too)
    return grid

"""Nearest-neighbour mean average precision per factor: the retrieval score of seed 003
(Hu et al. 2018), section 4, Table 2.

"For quantitative analysis we perform nearest neighbor search using a chunk of the features
and compute the mean average precision using an attribute as ground truth. We repeat the
search for all chunk and attribute pairs, and for each attribute we choose the best
performing chunk to represent it." Each image queries all the others, ranked by Euclidean
distance in the chosen code; the relevant ones share its value of the factor; average
precision = mean over the relevant images of the precision at their rank; mAP = mean over
queries (queries whose value no other image has are skipped).

The paper's "Random" row is the mAP of a random ranking: `chance_map` gives its exact
expectation, E[AP] = (H_M + (R - 1) / (M - 1) * (M - H_M)) / M for R relevant among M
ranked images (H_M the harmonic number), close to the value's frequency R / M.

Pure numpy over arrays (STYLE.md: a metric takes what it measures).
"""

from __future__ import annotations

import numpy as np


def _ranked_relevance(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, D) codes, (N, K) labels -> (K, N, N - 1) bool: for each factor, query and rank,
    whether the image at that rank shares the query's value (the query itself left out)."""
    x = np.asarray(codes, dtype=np.float64)
    sq = (x * x).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * x @ x.T  # (N, N) squared distances
    np.fill_diagonal(d, np.inf)  # the query ranks last, then is dropped
    order = np.argsort(d, axis=1)[:, :-1]  # (N, N - 1)
    lab = np.asarray(labels).astype(np.int32)
    return lab.T[:, order] == lab.T[:, :, None]  # (K, N, N - 1)


def average_precision(relevant: np.ndarray) -> np.ndarray:
    """(..., M) bool relevance in rank order -> (...,) average precision (NaN when nothing
    is relevant)."""
    rel = np.asarray(relevant, dtype=bool)
    hits = np.cumsum(rel, axis=-1, dtype=np.int32)  # relevant images up to each rank
    hits *= rel  # kept at the relevant ranks only
    inv_rank = 1.0 / np.arange(1, rel.shape[-1] + 1, dtype=np.float64)
    total = hits.astype(np.float64) @ inv_rank  # sum of precision@rank over relevant ranks
    n = rel.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def mean_average_precision(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, D) codes, (N, K) int labels -> (K,) nearest-neighbour mAP per factor."""
    labels = np.asarray(labels).reshape(len(codes), -1)
    ap = average_precision(_ranked_relevance(codes, labels))  # (K, N)
    return np.nanmean(ap, axis=1)


def chance_map(labels: np.ndarray) -> np.ndarray:
    """(N, K) int labels -> (K,) the expected mAP of a random ranking (the "Random" row)."""
    labels = np.asarray(labels).reshape(len(labels), -1)
    m = len(labels) - 1  # images ranked per query
    h = np.sum(1.0 / np.arange(1, m + 1))
    out = []
    for col in labels.T:
        _, inverse, counts = np.unique(col, return_inverse=True, return_counts=True)
        r = counts[inverse] - 1  # (N,) relevant images per query
        ok = r > 0
        expected = (h + (r[ok] - 1) / max(m - 1, 1) * (m - h)) / m
        out.append(float(expected.mean()) if ok.any() else float("nan"))
    return np.asarray(out)


def chunk_factor_map(codes: np.ndarray, labels: np.ndarray, n_chunks: int) -> np.ndarray:
    """(N, n_chunks * d) codes, (N, K) labels -> (n_chunks, K) mAP of each chunk alone."""
    codes = np.asarray(codes)
    if codes.shape[1] % n_chunks:
        raise ValueError(f"a code of {codes.shape[1]} dimensions does not split into {n_chunks} chunks")
    d = codes.shape[1] // n_chunks
    return np.stack([mean_average_precision(codes[:, i * d:(i + 1) * d], labels)
                     for i in range(n_chunks)])


__all__ = ["average_precision", "chance_map", "chunk_factor_map", "mean_average_precision"]

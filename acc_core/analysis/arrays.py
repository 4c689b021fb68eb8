"""Input checks shared by the analysis modules, and the empirical entropy."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import torch


def as_embeddings(u) -> np.ndarray:
    """Embeddings (N, D) as finite float64, or a ValueError that says what to pass."""
    x = np.asarray(u.detach().cpu() if isinstance(u, torch.Tensor) else u, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"embeddings must be a non-empty 2-D array (N, D), got shape {x.shape}; stack them row-wise.")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinite values; check the run that produced them.")
    return x


def as_labels(g) -> np.ndarray:
    """Integer labels (N,) as int64, or a ValueError."""
    x = np.asarray(g)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array (N,), got shape {x.shape}; pass one factor column.")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
            raise ValueError("labels must be integer value indices (e.g. dataset.factors(...)[:, k]).")
    return x.astype(np.int64)


def as_factors(factors, n: int) -> np.ndarray:
    """Factor labels (N, K) as int64 (a 1-D array is one factor), or a ValueError."""
    f = np.asarray(factors)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[1] < 1:
        raise ValueError(f"factors must be a 2-D array (N, K) of value indices, got shape {f.shape}.")
    if f.shape[0] != n:
        raise ValueError(f"got {f.shape[0]} factor rows for {n} embeddings; pass one row per embedding.")
    return np.stack([as_labels(col) for col in f.T], 1)


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_BEFORE = 0


@contextlib.contextmanager
def single_thread():
    """Run small-network training on one intra-op thread, restoring the setting after.

    For 128-unit layers at batch 512 thread synchronisation costs more than it saves, and on
    a busy machine a two-thread barrier can stall each op for a whole scheduler slice
    (measured: 13 µs vs 11.7 ms for one ReLU). The setting is process-wide, and the app's
    server runs several sessions in threads at once: so the users are counted, the first
    one in saves the setting and the last one out restores it (two overlapping calls can
    never leave the process stuck at one thread).
    """
    global _THREADS_USERS, _THREADS_BEFORE
    with _THREADS_LOCK:
        if _THREADS_USERS == 0:
            _THREADS_BEFORE = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            if _THREADS_USERS == 0:
                torch.set_num_threads(_THREADS_BEFORE)


def entropy(g) -> float:
    """Empirical entropy H(G) = −Σ_v p_v log p_v of integer labels g (N,), in nats."""
    g = as_labels(g)
    _, counts = np.unique(g, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _codes(col: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer labels (N,) -> codes 0..C-1 (N,) and C."""
    values, inverse = np.unique(col, return_inverse=True)
    return inverse.astype(np.int64), len(values)

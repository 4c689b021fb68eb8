"""2-D views of embeddings: PCA (with explained variance) and UMAP, and an on-disk cache.

The ABC supplement S1 (Figure S1a,b) shows Shapes3D embeddings by their first two principal
components (> 0.98 of the variance); UMAP (McInnes et al. 2018, umap-learn) is the
non-linear view. Both are pure functions of an array; `cached_projection` stores results
as .npz keyed by a hash of the array's bytes and the parameters, so the app recomputes
nothing for embeddings it has seen.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from acc_core.analysis.arrays import as_embeddings
from acc_core.paths import atomic_path

METHODS = ("pca", "umap")


def pca(u, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the top principal components.

    Returns coords float64 (N, n_components) and the explained variance ratio
    (n_components,), which sums to <= 1. Components are sign-fixed (largest loading
    positive) so the same data always gives the same picture.
    """
    x = as_embeddings(u)
    n, d = x.shape
    if not 1 <= n_components <= d:
        raise ValueError(f"n_components must be between 1 and the embedding dimension {d}, got {n_components}.")
    xc = x - x.mean(0)  # (N, D)
    if d <= n:  # eigenvectors of the (D, D) scatter matrix: one GEMM, far cheaper than an SVD
        evals, evecs = np.linalg.eigh(xc.T @ xc)  # ascending
        var, vt = np.clip(evals[::-1], 0.0, None), evecs[:, ::-1].T  # (D,), (D, D) rows = axes
    else:  # thin SVD xc = U S V^T: axes are rows of V^T, variances S²
        _, sv, vt = np.linalg.svd(xc, full_matrices=False)  # (N,), (N, D)
        var = sv**2
    k = min(n_components, len(var))
    axes = vt[:k]  # (k, D)
    signs = np.sign(axes[np.arange(k), np.abs(axes).argmax(1)])  # (k,)
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    coords = np.zeros((n, n_components))
    coords[:, :k] = xc @ axes.T  # (N, k); with N < n_components the extra columns stay 0
    total = var.sum()
    ratio = np.zeros(n_components)
    if total > 0:
        ratio[:k] = var[:k] / total
    return coords, ratio


def umap(
    u, n_components: int = 2, *, seed: int | None = 0, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """UMAP embedding float32 (N, n_components) with umap-learn; deterministic for a seed.

    A fixed seed (umap-learn's `random_state`) makes the fit single-threaded but
    reproducible, which is what a cache keyed by the inputs needs; `seed=None` runs it
    multi-threaded and not reproducible. `n_neighbors` is capped at N − 1 for small inputs.
    """
    x = as_embeddings(u)
    n = len(x)
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}.")
    if n < n_components + 2:
        raise ValueError(f"UMAP needs at least {n_components + 2} points, got {n}; embed more images.")
    if n_neighbors < 2 or not min_dist >= 0:
        raise ValueError("n_neighbors must be >= 2 and min_dist >= 0; the defaults are 15 and 0.1.")
    import warnings

    import umap as umap_learn  # heavy import (numba): only when a UMAP is asked for

    reducer = umap_learn.UMAP(
        n_components=n_components,
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        random_state=seed,
        # A spectral start needs a connected graph; small or clumped sets fall back to random.
        init="spectral" if n > 4 * n_components + 10 else "random",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", graph warnings
        return np.asarray(reducer.fit_transform(x.astype(np.float32)), dtype=np.float32)


def projection_key(u, method: str, n_components: int, **params) -> str:
    """Hex digest of the array's dtype, shape and bytes plus the method and its parameters."""
    x = np.ascontiguousarray(np.asarray(u))
    h = hashlib.sha256()
    h.update(f"{x.dtype.str}{x.shape}".encode())
    h.update(x.tobytes())
    h.update(json.dumps({"method": method, "n_components": n_components, **params}, sort_keys=True).encode())
    return h.hexdigest()[:24]


def cached_projection(u, method: str, n_components: int, cache_path, **params) -> dict:
    """PCA or UMAP of `u`, loaded from `cache_path` (a directory) when computed before.

    Returns {coords, explained_variance_ratio (PCA; None for UMAP), cached (bool: loaded
    from disk), path}. `params` go to `pca` / `umap` (e.g. seed, n_neighbors) and into the key.
    A corrupt cache file is recomputed and overwritten; writes are atomic.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(METHODS)}")
    path = Path(cache_path) / f"{method}{n_components}_{projection_key(u, method, n_components, **params)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                evr = z["explained_variance_ratio"] if "explained_variance_ratio" in z.files else None
                return {"coords": z["coords"], "explained_variance_ratio": evr, "cached": True, "path": path}
        except (OSError, ValueError, KeyError):
            pass  # unreadable: recompute below
    if method == "pca":
        coords, evr = pca(u, n_components, **params)
        arrays = {"coords": coords, "explained_variance_ratio": evr}
    else:
        coords, evr = umap(u, n_components, **params), None
        arrays = {"coords": coords}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return {"coords": coords, "explained_variance_ratio": evr, "cached": False, "path": path}

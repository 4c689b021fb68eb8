"""Benchmark UMAP of 10,000 64-D embeddings: first call, warm uncached call, cached call (JSON).

The app shows UMAP views of run embeddings (DESIGN.md, "Analysis": projections cached).
The first call in a process pays umap-learn's import and numba compilation; a second
uncached call (another seed, so another cache key) shows the fit alone; the cached call
is `cached_projection` reading the .npz back. PCA of the same array is timed as the
cheap view it is, and the cached result is checked against the computed one.

Usage: python benchmarks/bench_umap.py [--n 10000] [--dim 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mi import synthetic_embeddings  # noqa: E402  (the same Shapes3D-like clusters)

from acc_core.analysis import project  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    args = ap.parse_args()
    u, _ = synthetic_embeddings(args.n, args.dim)

    with tempfile.TemporaryDirectory() as cache:
        _, import_s = timed(lambda: __import__("umap"))
        first, first_s = timed(lambda: project.cached_projection(u, "umap", 2, cache, seed=0))
        warm, warm_s = timed(lambda: project.cached_projection(u, "umap", 2, cache, seed=1))
        again, cached_s = timed(lambda: project.cached_projection(u, "umap", 2, cache, seed=0))
        pca, pca_s = timed(lambda: project.pca(u, 2))
    assert first["coords"].shape == (args.n, 2) and not first["cached"] and not warm["cached"]
    assert again["cached"] and np.array_equal(again["coords"], first["coords"])

    print(json.dumps({
        "benchmark": "UMAP projection with on-disk cache",
        "data": {"n": args.n, "dim": args.dim},
        "import_umap_s": round(import_s, 2),
        "first_call_s": round(first_s, 2),
        "first_call_note": "includes numba compilation of umap-learn's kernels",
        "warm_uncached_call_s": round(warm_s, 2),
        "cached_call_s": round(cached_s, 4),
        "speedup_cached_vs_first": round(first_s / cached_s, 1),
        "speedup_cached_vs_warm": round(warm_s / cached_s, 1),
        "pca_s": round(pca_s, 4),
        "pca_explained_variance_ratio": [round(float(v), 4) for v in pca[1]],
    }, indent=2))


if __name__ == "__main__":
    main()

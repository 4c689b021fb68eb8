"""The large-sample job of the whole-dataset view (`acc_core.largeview` owns its requests and
cache): embed a large sample with the run's final checkpoint, project it, find neighbours.

1. Sample: all images of the run's evaluation split when the sample size reaches the dataset's
   size (480,000 for Shapes3D), else a fixed random subset (seed 0), sorted.
2. Embed every representation of the run's method with `acc_core.embed` (inference mode,
   channels-last, rendering overlapped; bfloat16 where the CPU or GPU has it natively). The
   same path embeds the first probe images too, and the largest deviation from the run's
   final snapshot (relative to the codes' mean norm) goes into the manifest: the check that
   the large sample is the embedding every other page shows.
3. Project: UMAP (`acc_core.analysis.project.umap`: 15 neighbours, min_dist 0.1, seed 0) of a
   fixed subsample of FIT_SIZE points; every other point is placed at the membership-weighted
   mean of its NEIGHBOURS nearest fitted points (exact), the weights of UMAP's fuzzy simplicial
   set (rho = the nearest distance, sigma such that the weights sum to log2 k). That is how
   umap-learn's `transform` initialises new points; its refinement epochs are left out (a
   departure from a full UMAP: they take minutes for 100,000 points on 2 cores).
4. Neighbours: each point's NEIGHBOURS nearest other points of the sample (exact up to 20,000
   points, pynndescent's approximate graph above), in the analyses' code space.

    python -m acc_core.largejob RUN [--size 100000] [--precision float32|bfloat16]
"""

from __future__ import annotations

import time

import numpy as np

from acc_core import largeview, rundir, runview

FIT_SIZE = 10_000  # points UMAP is fitted on (TensorBoard's projector subsamples 10,000 too)
NEIGHBOURS = 10
EXACT_UP_TO = 20_000
SAMPLE_SEED = 0
CHECK_PROBE = 256  # probe images re-embedded to check the path against the final snapshot


def sample_indices(n_total: int, size: int) -> np.ndarray:
    if size >= n_total:
        return np.arange(n_total, dtype=np.int64)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(n_total, size, replace=False))


def memberships(d: np.ndarray) -> np.ndarray:
    """(N, k) distances to a point's k nearest landmarks -> UMAP's fuzzy membership weights,
    normalised per row: exp(-(d - rho) / sigma), sum of the unnormalised row = log2 k."""
    k = d.shape[1]
    rho = d[:, :1]
    excess = np.maximum(d - rho, 0.0)
    target = np.log2(k) if k > 1 else 1.0
    lo, hi = np.full((len(d), 1), 1e-12), np.full((len(d), 1), 1e12)
    for _ in range(80):  # bisection on log sigma, all rows at once
        mid = np.sqrt(lo * hi)
        total = np.exp(-excess / mid).sum(1, keepdims=True)
        lo, hi = np.where(total < target, mid, lo), np.where(total < target, hi, mid)
    w = np.exp(-excess / np.sqrt(lo * hi))
    return w / w.sum(1, keepdims=True)


def project(u: np.ndarray, fit_size: int, k: int = NEIGHBOURS) -> np.ndarray:
    """(N, D) codes -> (N, 2) float32: UMAP of a subsample, the rest placed by memberships."""
    from acc_core.analysis import project as proj
    from acc_core.analysis.retrieval import knn

    n = len(u)
    fit = sample_indices(n, fit_size)
    xy = np.empty((n, 2), np.float32)
    xy[fit] = proj.umap(u[fit], n_components=2, seed=0)
    rest = np.setdiff1d(np.arange(n), fit)
    if len(rest):
        kk = min(k, len(fit))
        nb, score = knn(u[rest], u[fit], kk, similarity="l2")  # score = -distance
        w = memberships(-np.asarray(score, dtype=np.float64))
        xy[rest] = (w[:, :, None] * xy[fit][np.asarray(nb)]).sum(1)
    return xy


def neighbours(u: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest other points: rows (N, k) int32 and distances (N, k) float32."""
    n = len(u)
    k = min(k, n - 1)
    if n <= EXACT_UP_TO:
        from acc_core.analysis.retrieval import knn

        nb, score = knn(u, u, k, similarity="l2", exclude_self=True)
        return np.asarray(nb, np.int32), (-np.asarray(score)).astype(np.float32)
    import pynndescent

    ids, dist = pynndescent.NNDescent(u.astype(np.float32), n_neighbors=k + 1,
                                      random_state=0).neighbor_graph
    keep = ids != np.arange(n)[:, None]  # drop each point itself (or the farthest, if absent)
    keep[keep.all(1), -1] = False
    return (ids[keep].reshape(n, k).astype(np.int32),
            dist[keep].reshape(n, k).astype(np.float32))


def compute(run, sample_size: int = largeview.DEFAULT_SAMPLE, *, device=None,
            precision: str | None = None, progress=None, should_stop=None,
            fit_size: int | None = None) -> dict | None:
    """Compute and cache the run's large sample; the manifest, or None if stopped."""
    fit_size = FIT_SIZE if fit_size is None else int(fit_size)
    import torch

    from acc_core import embed
    from acc_core.paths import atomic_path, atomic_write_json
    from acc_core.train import load_model, pick_device

    reason = largeview.cannot_embed(run)
    if reason:
        raise ValueError(reason)
    say = progress or (lambda **kw: None)
    t0 = time.perf_counter()
    d, cfg = runview._run(run)
    dev = pick_device(device)
    precision = precision or embed.default_precision(dev)
    say(phase="loading the network", done=0, total=0)
    model, _ = load_model(d, device=str(dev))
    model = embed.prepare(model, dev)
    ds = runview.dataset(run)
    idx = sample_indices(len(ds), int(sample_size))
    times = {}
    t = time.perf_counter()
    codes = embed.embed(model, cfg, ds, idx, dev, precision=precision, should_stop=should_stop,
                        progress=lambda i, n: say(phase="embedding", done=i, total=n))
    if codes is None:
        return None
    times["embed_s"] = time.perf_counter() - t
    snap = runview.embeddings(run, "final")
    check = snap["indices"][:CHECK_PROBE]
    again = embed.embed(model, cfg, ds, check, dev, precision=precision)
    deviation = {}
    for rep in cfg.method.representations:
        ref = runview.embeddings(run, "final", rep)["u"][:CHECK_PROBE]
        mine = again[rep]
        if cfg.method.unit_vectors(cfg, rep):
            mine = mine / np.maximum(np.linalg.norm(mine, axis=1, keepdims=True), 1e-12)
        scale = max(float(np.linalg.norm(ref, axis=1).mean()), 1e-12)
        deviation[rep] = float(np.linalg.norm(mine - ref, axis=1).max() / scale)
    arrays = {"indices": idx, "factors": ds.factors(idx).astype(np.int16)}
    for rep, u in codes.items():
        if should_stop is not None and should_stop():
            return None
        arrays[f"rep_{rep}"] = u
        view = runview_unit(cfg, rep, u)
        t = time.perf_counter()
        say(phase=f"UMAP of {min(fit_size, len(u)):,} points ({rep})", done=0, total=0)
        arrays[f"xy_{rep}"] = project(view, fit_size)
        times[f"project_{rep}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        say(phase=f"nearest neighbours ({rep})", done=0, total=0)
        arrays[f"nn_{rep}"], arrays[f"nnd_{rep}"] = neighbours(view)
        times[f"neighbours_{rep}_s"] = time.perf_counter() - t
    folder = largeview.cache_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / largeview.SAMPLE) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    manifest = {"run_id": cfg.run_id, "step": rundir.checkpoint_step(d), "n": len(idx),
                "dataset_size": len(ds), "sample_size": int(sample_size), "split": snap["split"],
                "precision": precision, "device": str(dev), "threads": torch.get_num_threads(),
                "deviation_from_probe_snapshot": deviation, "fit_size": min(fit_size, len(idx)),
                "neighbours": NEIGHBOURS, "seconds": {**times, "total_s": time.perf_counter() - t0},
                "images_per_s": len(idx) / max(times["embed_s"], 1e-9)}
    atomic_write_json(folder / largeview.MANIFEST, manifest)  # last: marks it complete
    return manifest


def runview_unit(cfg, rep: str, u: np.ndarray) -> np.ndarray:
    """The codes as the analyses see them (unit rows for cosine codes)."""
    if cfg.method.unit_vectors(cfg, rep):
        return u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    return u


def run_job(run, job: dict, *, device=None, should_stop=None) -> str:
    """A claimed request, with progress written about twice a second: done | interrupted."""
    last = [0.0]

    def say(**fields):
        now = time.monotonic()
        if now - last[0] >= 0.5 or fields.get("done") == fields.get("total"):
            last[0] = now
            largeview.write_progress(run, state="running", **fields)

    out = compute(run, job.get("sample_size", largeview.DEFAULT_SAMPLE), device=device,
                  precision=job.get("precision"), progress=say, should_stop=should_stop)
    if out is None:
        largeview.write_progress(run, state="interrupted", phase="stopped with its worker; "
                                 "it resumes with the next one")
        return "interrupted"
    largeview.write_progress(run, state="done", phase="done", done=out["n"], total=out["n"],
                             seconds=out["seconds"]["total_s"])
    return "done"


def main(argv=None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m acc_core.largejob",
                                 description="compute a run's large sample in the foreground")
    ap.add_argument("run", help="a run id (prefix), a shipped run's name, or a run folder")
    ap.add_argument("--size", type=int, default=largeview.DEFAULT_SAMPLE)
    ap.add_argument("--precision", choices=("float32", "bfloat16"))
    ap.add_argument("--device")
    a = ap.parse_args(argv)
    m = compute(a.run, a.size, device=a.device, precision=a.precision,
                progress=lambda **kw: print(f"\r{kw['phase']}: {kw['done']:,}/{kw['total']:,}"
                                            + " " * 20, end="", flush=True))
    print()
    print(json.dumps(m, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

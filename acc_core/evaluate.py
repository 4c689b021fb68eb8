"""A run's standard evaluation, cached on disk: what did the representation isolate?

Glue between the run store and the pure functions of `acc_core.analysis`: embeddings come
from the run's snapshots (the fixed probe subset, at step 0 = untrained network and every
`snapshot_every` steps), and every result is cached in `<run dir>/eval/` keyed by step and
parameters, so the app and `acc eval` compute each thing once. The ACC paper section 4 and
appendices B-D; the ABC supplement S1-S2.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from acc_core.config import RunConfig
from acc_core.paths import atomic_write_json, atomic_path


# ----- locating runs and their embeddings ----------------------------------------------------
def _run(run) -> tuple[Path, RunConfig]:
    """A run id (or unique prefix), a RunRecord, or a run directory -> (dir, config)."""
    if hasattr(run, "dir") and hasattr(run, "config"):
        return Path(run.dir), run.config
    if isinstance(run, (str, os.PathLike)) and (Path(run) / "config.json").exists():
        d = Path(run)
    else:
        from acc_core.store import RunStore

        store = RunStore()
        d = store.run_dir(store.resolve(str(run)))
    return d, RunConfig.from_json((d / "config.json").read_text())


def snapshot_steps(run) -> list[int]:
    d, _ = _run(run)
    return sorted(int(p.stem.split("_")[1]) for p in (d / "snapshots").glob("step_*.npz"))


def _step(run, step) -> int:
    steps = snapshot_steps(run)
    if not steps:
        raise ValueError("this run has no embedding snapshots yet; wait for its first one")
    if step in ("final", None):
        return steps[-1]
    if step == "initial":
        return steps[0]
    step = int(step)
    if step not in steps:
        # the nearest earlier snapshot: a step slider may ask for any step
        earlier = [s for s in steps if s <= step]
        return earlier[-1] if earlier else steps[0]
    return step


@lru_cache(maxsize=64)
def _load_snapshot(path: str, mtime: float) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def embeddings(run, step="final") -> dict:
    """{u (N, E) float32 (unit rows for cosine runs), indices (N,), factors (N, K), factor_names, step}."""
    d, cfg = _run(run)
    s = _step(run, step)
    path = d / "snapshots" / f"step_{s:07d}.npz"
    z = _load_snapshot(str(path), path.stat().st_mtime)
    u = z["embeddings"].astype(np.float32, copy=False)  # shipped runs store float16
    if cfg.train.similarity == "cosine":
        # the loss sees directions only: every analysis works on unit vectors, as it does
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    return {
        "u": u,
        "indices": z["indices"].astype(np.int64, copy=False),
        "factors": z["factors"].astype(np.int64, copy=False),
        "factor_names": _factor_names(cfg),
        "step": s,
    }


@lru_cache(maxsize=8)
def _dataset(source: str, image_size):
    from acc_core import data as data_sources
    from acc_core.config import DataConfig

    return data_sources.load_for(DataConfig(source=source, image_size=image_size))


def dataset(run):
    _, cfg = _run(run)
    return _dataset(cfg.data.source, cfg.data.image_size)


def _factor_names(cfg: RunConfig) -> list[str]:
    from acc_core import data as data_sources

    return [f["name"] for f in data_sources.manifest(cfg.data.source)["factors"]]


def inactive_factors(run) -> list[str]:
    _, cfg = _run(run)
    return sorted(set(cfg.set_a.inactive) | set(cfg.set_b.inactive))


def length_scale(cfg: RunConfig) -> float | None:
    """√τ for l2sq, τ for l2, √(2τ) for cosine (on unit vectors): below it the loss no longer
    separates points. The same for ACC and for the InfoNCE baseline (same logits sim/τ)."""
    from acc_core.analysis.mi import loss_length_scale

    t = cfg.train
    return loss_length_scale(t.similarity, t.temperature)


# ----- the cache -------------------------------------------------------------------------------
def _cache_path(run, name: str) -> Path:
    """Where a cached analysis is read: the run's own eval/ folder when it holds it, else
    where it would be written (`_write_path`)."""
    d, cfg = _run(run)
    own = d / "eval" / name
    return own if own.exists() else _write_path(d, cfg, name)


def _write_path(d: Path, cfg: RunConfig, name: str) -> Path:
    """The run's own eval/ folder; for a shipped run (it has meta.json) ACC_HOME/
    pretrained-cache/<run id>/eval/, so nothing ever writes into the installed pretrained/
    folder or replaces what a run shipped with."""
    if not (d / "meta.json").exists():
        return d / "eval" / name
    from acc_core.paths import acc_home

    return acc_home() / "pretrained-cache" / cfg.run_id / "eval" / name


def _key(**params) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _cached_json(run, name: str, compute):
    path = _cache_path(run, name)
    if path.exists():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass  # a damaged cache entry is recomputed
    value = compute()
    try:
        atomic_write_json(path, value, indent=None)
    except OSError:
        pass  # a read-only run directory still evaluates, it just does not cache
    return value


def _cached_npz(run, name: str, compute) -> dict:
    path = _cache_path(run, name)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            pass
    value = compute()
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **value)
    except OSError:
        pass
    return value


# ----- analyses ----------------------------------------------------------------------------------
def projection(run, step="final", method="pca", n_components=2) -> dict:
    """{coords (N, c), explained_variance (c,) for PCA, indices, factors, step}."""
    from acc_core.analysis import project

    if method not in ("pca", "umap"):
        raise ValueError(f"unknown projection {method!r}; valid: pca, umap")
    e = embeddings(run, step)

    def compute():
        if method == "pca":
            coords, var = project.pca(e["u"], n_components=n_components)
            return {"coords": coords.astype(np.float32), "explained_variance": np.asarray(var)}
        coords = project.umap(e["u"], n_components=n_components, seed=0)
        return {"coords": coords.astype(np.float32)}

    out = _cached_npz(run, f"{method}{n_components}_step{e['step']:07d}.npz", compute)
    return {**out, "indices": e["indices"], "factors": e["factors"], "step": e["step"]}


def noise_sweep(run, step="final", sigmas=None) -> dict:
    """I(U + N(0, s^2 I); G) for every factor over a sweep of s (the ABC supplement Figures S1, S3)."""
    from acc_core.analysis import mi

    d, cfg = _run(run)
    e = embeddings(run, step)
    sig = None if sigmas is None else [float(s) for s in sigmas]

    def compute():
        out = mi.noise_sweep(
            e["u"], e["factors"], sig, factor_names=e["factor_names"],
            similarity=cfg.train.similarity, temperature=cfg.train.temperature,
        )
        out = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
               for k, v in out.items()}
        out["length_scale"] = length_scale(cfg)
        return out

    res = _cached_json(run, f"sweep_step{e['step']:07d}_{_key(s=sig)}.json", compute)
    res["inactive"] = inactive_factors(run)
    res["step"] = e["step"]
    return res


def default_sigma(cfg: RunConfig) -> float:
    ls = length_scale(cfg)
    return float(ls) if ls else 0.1


def mi_at(run, sigma: float, step="final") -> np.ndarray:
    """(K,) nats: I(U + N(0, sigma^2 I); G_k) for every factor, one noise scale."""
    from acc_core.analysis import mi

    e = embeddings(run, step)
    key = f"mi_step{e['step']:07d}_{_key(s=float(sigma))}.json"
    return np.asarray(_cached_json(
        run, key,
        lambda: np.asarray(mi.gaussian_channel_mi_multi(e["u"], e["factors"], [float(sigma)]))[:, 0].tolist(),
    ))


def probes(run, sigma=None, step="final") -> dict:
    """Per factor test accuracy of a 3x32 classifier on noisy embeddings, with chance."""
    from acc_core.analysis import probe

    _, cfg = _run(run)
    sigma = default_sigma(cfg) if sigma is None else float(sigma)
    e = embeddings(run, step)

    def compute():
        res = probe.probe_accuracy(e["u"], e["factors"], sigma=sigma, seed=0)
        return {name: _floats(res[k] if k in res else res[name])
                for k, name in _keyed(res, e["factor_names"])}

    return _cached_json(run, f"probe_step{e['step']:07d}_{_key(s=sigma)}.json", compute)


def agreement(run, k=10, step="final") -> dict:
    """Per factor: fraction of the k nearest neighbours sharing the query's value, vs chance."""
    from acc_core.analysis import retrieval

    _, cfg = _run(run)
    e = embeddings(run, step)

    def compute():
        res = retrieval.factor_agreement(e["u"], e["factors"], k=k, similarity=_sim(cfg))
        return {name: _floats(res[kk] if kk in res else res[name])
                for kk, name in _keyed(res, e["factor_names"])}

    return _cached_json(run, f"agree_step{e['step']:07d}_{_key(k=k)}.json", compute)


def _keyed(res: dict, names: list[str]):
    """Analysis results are keyed by factor index or name; pair each with its name."""
    if all(n in res for n in names):
        return [(n, n) for n in names]
    return [(i, n) for i, n in enumerate(names)]


def _floats(d):
    if isinstance(d, dict):
        return {k: _floats(v) for k, v in d.items()}
    if isinstance(d, (np.floating, np.integer)):
        return d.item()
    if isinstance(d, np.ndarray):
        return d.tolist()
    return d


def _sim(cfg: RunConfig) -> str:
    return cfg.train.similarity


def knn_images(run, query_position: int, k: int = 8, step="final") -> dict:
    """Nearest neighbours of one probe image: positions in the probe subset and scores."""
    from acc_core.analysis import retrieval

    _, cfg = _run(run)
    e = embeddings(run, step)
    u = e["u"]
    idx, scores = retrieval.knn(u[query_position : query_position + 1], u, k + 1,
                                similarity=_sim(cfg))
    idx, scores = np.asarray(idx)[0], np.asarray(scores)[0]
    keep = idx != query_position
    return {"positions": idx[keep][:k], "scores": scores[keep][:k],
            "indices": e["indices"][idx[keep][:k]]}


def class_grid(run, factor: str | None = None, step="final", seed=0) -> np.ndarray:
    """(C, C) probe positions: for a query of each class, its nearest image of every class."""
    from acc_core.analysis import retrieval

    _, cfg = _run(run)
    e = embeddings(run, step)
    k = 0 if factor is None else e["factor_names"].index(factor)
    return np.asarray(retrieval.class_retrieval_grid(e["u"], e["factors"][:, k], seed=seed,
                                                     similarity=_sim(cfg)))


def mine_spot_check(run, factor: str, sigma: float, steps: int = 2000, step="final") -> float:
    from acc_core.analysis import mi

    e = embeddings(run, step)
    k = e["factor_names"].index(factor)
    return float(mi.mine_mi(e["u"], e["factors"][:, k], sigma=sigma, steps=steps))


# ----- run-time estimate -----------------------------------------------------------------------
@lru_cache(maxsize=32)
def _seconds_per_step(encoder: str, dim: int, channels: int, size: int, batch: int) -> float:
    """Time a few forward+backward passes of the run's network on this machine."""
    import torch

    from acc_core.models import build_encoder

    # as training runs it: channels-last (measured 1.4-2.5x faster on CPU), first pass discarded
    model = build_encoder(encoder, dim, in_channels=channels, image_size=size)
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        model(x).pow(2).mean().backward()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def estimate_seconds(config: RunConfig) -> float:
    """Estimated wall time of a run on this machine's CPU (GPU runs are much faster)."""
    from acc_core import data as data_sources

    m = data_sources.manifest(config.data.source)
    h, _, c = m["image_shape"]
    size = config.data.image_size or h
    t = config.train
    batch = 2 * t.set_size * t.pairs_per_step * (2 if t.double_augmentation or t.method == "hue_infonce" else 1)
    per_step = _seconds_per_step(config.model.encoder, config.model.embedding_dim, c, size, batch)
    n_snap = t.steps // t.snapshot_every + 2
    snap = n_snap * per_step * t.probe_size / batch / 3  # forward only, about a third
    return float(t.steps * per_step * 1.15 + snap)  # 15%: data, loss, optimiser


# ----- the standard report -----------------------------------------------------------------------
def report(run, sigma=None, step="final") -> dict:
    """Embeddings, PCA, noise sweep, MI at sigma, probes and agreement, for final and initial."""
    d, cfg = _run(run)
    sigma = default_sigma(cfg) if sigma is None else float(sigma)
    names = _factor_names(cfg)
    out = {"run_id": cfg.run_id, "label": cfg.describe(), "sigma": sigma,
           "length_scale": length_scale(cfg), "inactive": inactive_factors(run), "factors": {}}
    for which in ("initial", step):
        tag = "initial" if which == "initial" else "final"
        e = embeddings(run, which)
        mi_vals = mi_at(run, sigma, which)
        pr = probes(run, sigma, which)
        ag = agreement(run, 10, which)
        pc = projection(run, which, "pca", 2)
        out[f"{tag}_step"] = e["step"]
        out[f"{tag}_pca_explained_variance"] = np.asarray(pc["explained_variance"]).tolist()
        for i, n in enumerate(names):
            f = out["factors"].setdefault(n, {})
            f[f"{tag}_mi"] = float(mi_vals[i])
            f[f"{tag}_probe"] = pr[n]["accuracy"]
            f["probe_chance"] = pr[n]["chance"]
            f[f"{tag}_agreement"] = ag[n]["agreement"]
            f["agreement_chance"] = ag[n]["chance"]
    sweep = noise_sweep(run, step)
    out["entropy"] = dict(zip(names, np.asarray(sweep["entropy"], dtype=float).tolist()))
    atomic_write_json(_write_path(d, cfg, "report.json"), out)  # never over a shipped report
    return out


def format_report(rep: dict) -> str:
    lines = [
        f"run {rep['run_id']}  {rep['label']}",
        f"steps: initial {rep['initial_step']} -> final {rep['final_step']};  "
        f"noise sigma = {rep['sigma']:g}" + (f" (length scale {rep['length_scale']:g})"
                                             if rep.get("length_scale") else ""),
        "",
        f"{'factor':<14}{'H(G)':>7}{'MI init':>9}{'MI final':>10}{'probe':>8}{'chance':>8}"
        f"{'agree':>8}{'chance':>8}",
    ]
    for name, f in rep["factors"].items():
        mark = " *" if name in rep["inactive"] else ""
        # Monte Carlo estimates can dip a hair below zero; the true value cannot.
        mi0, mi1 = max(f["initial_mi"], 0.0), max(f["final_mi"], 0.0)
        lines.append(
            f"{(name + mark):<14}{rep['entropy'][name]:>7.2f}{mi0:>9.2f}"
            f"{mi1:>10.2f}{f['final_probe']:>8.2f}{f['probe_chance']:>8.2f}"
            f"{f['final_agreement']:>8.2f}{f['agreement_chance']:>8.2f}"
        )
    lines += ["", "* inactive factor (held constant within a set). MI in nats at sigma; "
              "probe = test accuracy of a 3x32 classifier; agree = kNN (k=10) agreement."]
    return "\n".join(lines)

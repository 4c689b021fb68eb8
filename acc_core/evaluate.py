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
from pathlib import Path

from functools import lru_cache

import numpy as np

from acc_core import rundir
from acc_core.config import RunConfig
from acc_core.paths import atomic_path, atomic_write_json
from acc_core.runview import (REL_SIGMA, _factor_names, _run, dataset, embeddings,  # noqa: F401
                              inactive_factors, length_scale, noise_unit, representations,
                              rms_radius, snapshot_steps, split)


# ----- the cache -------------------------------------------------------------------------------
def _cache_path(run, name: str) -> Path:
    """Where a cached analysis is read: the run's own eval/ folder when it holds it, else
    where it would be written (`_write_path`)."""
    d, cfg = _run(run)
    _clean_once(str(_write_path(d, cfg, name).parent))
    own = rundir.eval_dir(d) / name
    return own if own.exists() else _write_path(d, cfg, name)


@lru_cache(maxsize=1024)
def _clean_once(folder: str) -> None:
    """An eval folder's stale temp files (a kill while caching) go the first time it is used."""
    from acc_core.paths import remove_stale_temp_files

    remove_stale_temp_files(folder)


def _write_path(d: Path, cfg: RunConfig, name: str) -> Path:
    """The run's own eval/ folder; for a shipped run (it has meta.json) ACC_HOME/
    pretrained-cache/<run id>/eval/, so nothing ever writes into the installed pretrained/
    folder or replaces what a run shipped with."""
    if not rundir.is_shipped(d):
        return rundir.eval_dir(d) / name
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
    d, _ = _run(run)
    packed = _packed(str(rundir.eval_dir(d) / rundir.PACKED_EVAL))
    if name in packed:
        return json.loads(json.dumps(packed[name]))  # a copy: callers may change it
    value = compute()
    try:
        atomic_write_json(path, value, indent=None)
    except OSError:
        pass  # a read-only run directory still evaluates, it just does not cache
    return value


@lru_cache(maxsize=256)
def _packed(path: str) -> dict:
    """A shipped run's small JSON caches, packed into one file (`pack_eval`): name -> value."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def pack_eval(run_dir) -> int:
    """Pack a run folder's small JSON caches (everything in eval/ but the reports and the
    method's evaluation) into eval/cache.json: a shipped run then holds a few files instead
    of dozens (each small file costs a whole disk block). Returns how many were packed."""
    folder = rundir.eval_dir(run_dir)
    keep = {rundir.MODEL_EVAL, rundir.PACKED_EVAL}
    files = [p for p in sorted(folder.glob("*.json"))
             if p.name not in keep and not p.name.startswith("report")]
    packed = dict(_packed.__wrapped__(str(folder / rundir.PACKED_EVAL)))
    for p in files:
        packed[p.name] = json.loads(p.read_text())
    atomic_write_json(folder / rundir.PACKED_EVAL, packed, indent=None)
    for p in files:
        p.unlink()
    _packed.cache_clear()
    return len(files)


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
def _name(base: str, e: dict, cfg: RunConfig, suffix: str = "") -> str:
    """Cache file name: the default representation keeps the names shipped runs carry."""
    rep = "" if e["rep"] == cfg.method.representations[0] else f"_rep-{e['rep']}"
    return f"{base}_step{e['step']:07d}{rep}{suffix}"


def projection(run, step="final", method="pca", n_components=2, rep=None) -> dict:
    """{coords (N, c), explained_variance (c,) for PCA, indices, factors, step}."""
    from acc_core.analysis import project

    if method not in project.METHODS:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(project.METHODS)}")
    _, cfg = _run(run)
    e = embeddings(run, step, rep)

    def compute():
        if method == "pca":
            coords, var = project.pca(e["u"], n_components=n_components)
            return {"coords": coords.astype(np.float32), "explained_variance": np.asarray(var)}
        coords = project.umap(e["u"], n_components=n_components, seed=0)
        return {"coords": coords.astype(np.float32)}

    name = _name(f"{method}{n_components}", e, cfg, ".npz")
    out = _cached_npz(run, name, compute)
    return {**out, "indices": e["indices"], "factors": e["factors"], "step": e["step"]}


def noise_sweep(run, step="final", sigmas=None, rep=None) -> dict:
    """I(U + N(0, s^2 I); G) for every factor over a sweep of s (the ABC supplement Figures
    S1, S3). For a code without a loss length scale the default sweep spans the same range
    relative to the final code's RMS radius, and `noise_unit` says so."""
    from acc_core.analysis import mi

    _, cfg = _run(run)
    e = embeddings(run, step, rep)
    sig = None if sigmas is None else [float(s) for s in sigmas]
    unit = noise_unit(run, e["rep"])

    def compute():
        ls = unit["value"] if unit["kind"] == "length scale" else unit["value"] * REL_SIGMA
        out = mi.noise_sweep(e["u"], e["factors"], sig, factor_names=e["factor_names"],
                             length_scale=ls)
        out = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
               for k, v in out.items()}
        out["length_scale"] = length_scale(cfg, e["rep"])
        out["similarity"] = cfg.train.similarity if cfg.method.uses_similarity else None
        return out

    res = _cached_json(run, _name("sweep", e, cfg, f"_{_key(s=sig)}.json"), compute)
    res["inactive"] = inactive_factors(run)
    res["step"] = e["step"]
    res["unit"] = unit
    return res


def default_sigma(run, rep=None) -> float:
    """The noise scale of the standard report: the loss's length scale, or REL_SIGMA x the
    final code's RMS radius for codes without one. `run` may be a RunConfig whose method
    has a length scale."""
    if isinstance(run, RunConfig):
        ls = length_scale(run, rep)
        if ls:
            return float(ls)
        raise ValueError("this method's codes have no length scale; pass the run, not its config")
    unit = noise_unit(run, rep)
    return unit["value"] if unit["kind"] == "length scale" else unit["value"] * REL_SIGMA


def mi_at(run, sigma: float, step="final", rep=None) -> np.ndarray:
    """(K,) nats: I(U + N(0, sigma^2 I); G_k) for every factor, one noise scale."""
    from acc_core.analysis import mi

    _, cfg = _run(run)
    e = embeddings(run, step, rep)
    return np.asarray(_cached_json(
        run, _name("mi", e, cfg, f"_{_key(s=float(sigma))}.json"),
        lambda: np.asarray(mi.gaussian_channel_mi_multi(e["u"], e["factors"], [float(sigma)]))[:, 0].tolist(),
    ))


def probes(run, sigma=None, step="final", rep=None) -> dict:
    """Per factor test accuracy of a 3x32 classifier on noisy embeddings, with chance."""
    from acc_core.analysis import probe

    _, cfg = _run(run)
    sigma = default_sigma(run, rep) if sigma is None else float(sigma)
    e = embeddings(run, step, rep)

    def compute():
        res = probe.probe_accuracy(e["u"], e["factors"], sigma=sigma, seed=0)
        return {name: _floats(res[k] if k in res else res[name])
                for k, name in _keyed(res, e["factor_names"])}

    return _cached_json(run, _name("probe", e, cfg, f"_{_key(s=sigma)}.json"), compute)


def agreement(run, k=10, step="final", rep=None) -> dict:
    """Per factor: fraction of the k nearest neighbours sharing the query's value, vs chance."""
    from acc_core.analysis import retrieval

    _, cfg = _run(run)
    e = embeddings(run, step, rep)

    def compute():
        res = retrieval.factor_agreement(e["u"], e["factors"], k=k, similarity=_sim(cfg, e["rep"]))
        return {name: _floats(res[kk] if kk in res else res[name])
                for kk, name in _keyed(res, e["factor_names"])}

    return _cached_json(run, _name("agree", e, cfg, f"_{_key(k=k)}.json"), compute)


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


def _sim(cfg: RunConfig, rep=None) -> str:
    return cfg.method.retrieval_similarity(cfg, cfg.method.check_representation(rep))


def knn_images(run, query_position: int, k: int = 8, step="final", rep=None) -> dict:
    """Nearest neighbours of one probe image: positions in the probe subset and scores."""
    from acc_core.analysis import retrieval

    _, cfg = _run(run)
    e = embeddings(run, step, rep)
    u = e["u"]
    idx, scores = retrieval.knn(u[query_position : query_position + 1], u, k + 1,
                                similarity=_sim(cfg, e["rep"]))
    idx, scores = np.asarray(idx)[0], np.asarray(scores)[0]
    keep = idx != query_position
    return {"positions": idx[keep][:k], "scores": scores[keep][:k],
            "indices": e["indices"][idx[keep][:k]]}


def class_grid(run, factor: str | None = None, step="final", seed=0, rep=None,
               first: bool = True) -> np.ndarray:
    """(C, C) probe positions: for a query of each class, its nearest image of every class;
    `first`: the queries are each class's first probe image (probe images are sorted by
    index: for MNIST the first held-out test image of each digit in the probe), as the ACC
    paper's Figure 4 draws it; otherwise drawn with `seed`."""
    from acc_core.analysis import retrieval

    _, cfg = _run(run)
    e = embeddings(run, step, rep)
    k = 0 if factor is None else e["factor_names"].index(factor)
    return np.asarray(retrieval.class_retrieval_grid(e["u"], e["factors"][:, k], seed=seed,
                                                     similarity=_sim(cfg, e["rep"]), first=first))


def mine_spot_check(run, factor: str, sigma: float, steps: int = 2000, step="final", rep=None) -> float:
    from acc_core.analysis import mine

    e = embeddings(run, step, rep)
    k = e["factor_names"].index(factor)
    return float(mine.mine_mi(e["u"], e["factors"][:, k], sigma=sigma, steps=steps))


def metrics(run, step="final", rep=None, align="none", mode="fast") -> dict:
    """The standard disentanglement scores (`acc_core.analysis.metrics`) of one representation,
    after a named alignment, on the snapshot's probe (every run has one, shipped runs without
    weights too). NaN (undefined, e.g. one factor) is stored as None."""
    from acc_core.analysis import metrics as m

    _, cfg = _run(run)
    e = embeddings(run, step, rep)

    def compute():
        res = m.all_metrics(e["u"], e["factors"], align_to=align, mode=mode)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in res.items()}

    return _cached_json(run, metrics_name(e, cfg, align, mode), compute)


METRICS_VERSION = 2  # part of the cache key: a change of recipe never reads an older score


def metrics_name(e: dict, cfg: RunConfig, align: str, mode: str = "fast") -> str:
    """The cache file name of `metrics` for embeddings `e` (shared with the leaderboard)."""
    return _name("metrics", e, cfg, f"_{_key(align=align, mode=mode, v=METRICS_VERSION)}.json")


def every_alignment(run, rep=None, mode="fast") -> dict:
    """{alignment: scores} of the final code for every named alignment (the leaderboard's)."""
    from acc_core.analysis.metrics import ALIGNMENTS

    return {a: metrics(run, "final", rep, a, mode) for a in ALIGNMENTS}


def model_eval(run) -> dict | None:
    """The method's own evaluation of its networks (LORD's content transfer, the VAEs'
    traversals), written when training ended; None if the method has none."""
    d, _ = _run(run)
    return rundir.read_model_eval(d)


# ----- the standard report -----------------------------------------------------------------------
def report(run, sigma=None, step="final", rep=None) -> dict:
    """Embeddings, PCA, noise sweep, MI at sigma, probes and agreement, for final and initial,
    of one representation."""
    d, cfg = _run(run)
    rep = cfg.method.check_representation(rep)
    sigma = default_sigma(run, rep) if sigma is None else float(sigma)
    names = _factor_names(cfg)
    out = {"run_id": cfg.run_id, "label": cfg.describe(), "method": cfg.train.method,
           "representation": rep, "sigma": sigma, "length_scale": length_scale(cfg, rep),
           "noise_unit": noise_unit(run, rep), "inactive": inactive_factors(run),
           "split": embeddings(run, "final", rep)["split"], "factors": {}}
    for which in ("initial", step):
        tag = "initial" if which == "initial" else "final"
        e = embeddings(run, which, rep)
        mi_vals = mi_at(run, sigma, which, rep)
        pr = probes(run, sigma, which, rep)
        ag = agreement(run, 10, which, rep)
        pc = projection(run, which, "pca", 2, rep)
        out[f"{tag}_step"] = e["step"]
        out[f"{tag}_pca_explained_variance"] = np.asarray(pc["explained_variance"]).tolist()
        for i, n in enumerate(names):
            f = out["factors"].setdefault(n, {})
            f[f"{tag}_mi"] = float(mi_vals[i])
            f[f"{tag}_probe"] = pr[n]["accuracy"]
            f["probe_chance"] = pr[n]["chance"]
            f[f"{tag}_agreement"] = ag[n]["agreement"]
            f["agreement_chance"] = ag[n]["chance"]
    sweep = noise_sweep(run, step, rep=rep)
    out["entropy"] = dict(zip(names, np.asarray(sweep["entropy"], dtype=float).tolist()))
    name = "report.json" if rep == cfg.method.representations[0] else f"report_rep-{rep}.json"
    atomic_write_json(_write_path(d, cfg, name), out)  # never over a shipped report
    return out


def format_report(rep: dict) -> str:
    unit = rep.get("noise_unit") or {"kind": "length scale", "value": rep.get("length_scale")}
    if unit.get("kind") == "rms radius":
        scale = f" ({rep['sigma'] / unit['value']:.2f} x the code's RMS radius {unit['value']:.3g})"
    else:
        scale = f" (length scale {rep['length_scale']:g})" if rep.get("length_scale") else ""
    lines = [
        f"run {rep['run_id']}  {rep['label']}",
        f"representation: {rep.get('representation', 'embedding')};  steps: initial "
        f"{rep['initial_step']} -> final {rep['final_step']};  noise sigma = {rep['sigma']:.4g}" + scale,
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
    part = rep.get("split", "train")
    lines += ["", "* inactive factor (held constant within a set). MI in nats at sigma; "
              "probe = test accuracy of a 3x32 classifier; agree = kNN (k=10) agreement.",
              f"Images: a fixed probe subset of the {part} split"
              + (" (held out from training)." if part == "test" else ".")]
    return "\n".join(lines)

"""A run's codes as the analyses see them: locate a run (id, prefix, record or folder), read
its config (checked against the id a shipped run was trained as) and its snapshots, pick a
representation, and state its noise scales (the loss's length scale, or the code's RMS
radius). Read-only; `acc_core.evaluate` computes and caches analyses on top of it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from acc_core import rundir
from acc_core.config import RunConfig
from acc_core.data.base import DataError


# ----- locating runs and their embeddings ----------------------------------------------------
def _run(run) -> tuple[Path, RunConfig]:
    """A run id (or unique prefix), a RunRecord, or a run directory -> (dir, config)."""
    if hasattr(run, "dir") and hasattr(run, "config"):
        return Path(run.dir), run.config
    if isinstance(run, (str, os.PathLike)) and (Path(run) / rundir.CONFIG).exists():
        d = Path(run)
    else:
        from acc_core.store import RunStore

        store = RunStore()
        d = store.run_dir(store.resolve(str(run)))
    return d, _config(str(d), (d / rundir.CONFIG).stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _config(d: str, mtime: int) -> RunConfig:
    cfg = rundir.read_config(d)
    name = Path(d).name
    if len(name) == 12 and all(c in "0123456789abcdef" for c in name) and name != cfg.run_id:
        raise DataError(f"{Path(d) / rundir.CONFIG} was edited: the folder is run {name}, the "
                        f"config now hashes to {cfg.run_id}; restore it (or delete the run)")
    meta = Path(d) / rundir.META
    if meta.exists():  # a shipped run's config must be the one it was trained with
        shipped_id = rundir.read_meta(d).get("run_id")
        if shipped_id not in (None, cfg.run_id):
            raise DataError(f"{Path(d) / rundir.CONFIG} was edited: the run was shipped as "
                            f"{shipped_id}, the config now hashes to {cfg.run_id}; restore it "
                            "from the repository")
    return cfg


def snapshot_steps(run) -> list[int]:
    d, _ = _run(run)
    return rundir.snapshot_steps(d)


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
def _load_snapshot(d: str, step: int, mtime: float) -> dict:
    return rundir.load_snapshot(d, step)


def representations(run) -> tuple[str, ...]:
    """The codes a run exposes for analysis (its method's), the default first."""
    _, cfg = _run(run)
    return cfg.method.representations


def embeddings(run, step="final", rep=None) -> dict:
    """{u (N, D) float32 (unit rows for cosine runs), indices (N,), factors (N, K), factor_names,
    step, rep} of representation `rep` (default: the method's first)."""
    d, cfg = _run(run)
    rep = cfg.method.check_representation(rep)
    s = _step(run, step)
    path = rundir.snapshot_path(d, s)
    z = _load_snapshot(str(d), s, path.stat().st_mtime)
    u = rundir.snapshot_codes(z, rep, cfg.method.representations)
    if cfg.method.unit_vectors(cfg, rep):
        # the loss sees directions only: every analysis works on unit vectors, as it does
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    return {
        "u": u,
        "indices": z["indices"],
        "factors": z["factors"],
        "factor_names": _factor_names(cfg),
        "step": s,
        "rep": rep,
        "split": z["split"],
    }


@lru_cache(maxsize=8)
def _dataset(source: str, image_size, split: str = "train"):
    from acc_core import data as data_sources
    from acc_core.config import DataConfig

    return data_sources.load_for(DataConfig(source=source, image_size=image_size), split)


def split(run) -> str:
    """The split the run's snapshots embed ("test": held-out images, for MNIST)."""
    d, _ = _run(run)
    steps = rundir.snapshot_steps(d)
    if not steps:
        return "train"
    path = rundir.snapshot_path(d, steps[-1])
    return _load_snapshot(str(d), steps[-1], path.stat().st_mtime)["split"]


def dataset(run):
    """The dataset whose images the run's snapshots index (their split)."""
    _, cfg = _run(run)
    return _dataset(cfg.data.source, cfg.data.image_size, split(run))


def _factor_names(cfg: RunConfig) -> list[str]:
    from acc_core import data as data_sources

    return data_sources.factor_names(cfg.data.source)


def inactive_factors(run) -> list[str]:
    _, cfg = _run(run)
    return inactive_factors_of(cfg)


def length_scale(cfg: RunConfig, rep=None) -> float | None:
    """The loss's length scale of a code (ACC: √τ for l2sq, τ for l2, √(2τ) for cosine on unit
    vectors; below it the loss no longer separates points), or None for codes whose loss has
    none (LORD, the VAEs)."""
    return cfg.method.length_scale(cfg, cfg.method.check_representation(rep))


# For a code without a loss length scale, noise scales are stated relative to the RMS radius
# of the run's final code: sigma = REL_SIGMA x radius is the default. 0.25 is about where √τ
# sits in the shipped ACC runs (their final radius is 2.8 to 4.8 at √τ = 1).
REL_SIGMA = 0.25


def rms_radius(u: np.ndarray) -> float:
    """sqrt(mean_i ||u_i - mean(u)||^2) of (N, D) codes."""
    x = np.asarray(u, dtype=np.float64)
    x = x - x.mean(0)
    return float(np.sqrt((x * x).sum(1).mean()))


def noise_unit(run, rep=None) -> dict:
    """How a run's noise scales are stated: {"kind": "length scale" | "rms radius", "value"}.
    "rms radius" is the radius of the final code, the same for every step of the run."""
    _, cfg = _run(run)
    ls = length_scale(cfg, rep)
    if ls:
        return {"kind": "length scale", "value": float(ls)}
    return {"kind": "rms radius", "value": rms_radius(embeddings(run, "final", rep)["u"])}


def inactive_factors_of(cfg: RunConfig) -> list[str]:
    return sorted(set(cfg.set_a.inactive) | set(cfg.set_b.inactive))



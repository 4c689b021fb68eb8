"""The whole-dataset view: a large sample of a run's dataset (up to all 480,000 Shapes3D
images) embedded by the run's final checkpoint, projected and linked to its neighbours by the
background worker, and read back by the Embeddings page and `acc export --sample large`.

Every other page looks at the probe subset (1,000-2,000 images, DESIGN.md "Analysis"); a rare
factor combination or a thin cluster only shows in a large sample. The computation itself is
`acc_core.largejob`.

How a job is requested and tracked, outside the training queue's schema:

    ACC_HOME/large-requests/<run id>.json     a request {run_id, dir, sample_size, precision}
    ACC_HOME/large-requests/<run id>.running  the request, claimed by a worker (a hard link:
                                              exactly one worker wins), with its pid and host

A worker (`acc_core.worker`) looks at that one folder whenever no training run is waiting
(training always comes first) and serves one request at a time (`serve_next`). A claimed
request whose worker died goes back to the folder; a stopped worker puts its request back.

What a job writes, in `cache_dir(run)`: the run's eval/large/ folder, or for a shipped run
ACC_HOME/pretrained-cache/<run id>/eval/large/ (nothing is ever written under pretrained/):

    progress.json   {state: queued | running | done | failed | interrupted, phase, done,
                     total, message, updated_at}
    sample.npz      indices (N,), factors (N, K) int16, and per representation R: rep_R
                    (N, D) float32 codes, xy_R (N, 2) projection, nn_R (N, k) int32 rows of
                    each point's nearest other points, nnd_R (N, k) float32 their distances
    sample.json     the manifest, written last (it marks the sample complete): step, n,
                    timings, precision, deviation from the probe snapshot, the recipe
"""

from __future__ import annotations

import json
import os
import socket
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from acc_core import rundir, runview
from acc_core.paths import acc_home, atomic_write_json

DEFAULT_SAMPLE = 100_000
REQUESTS = "large-requests"
PROGRESS, SAMPLE, MANIFEST = "progress.json", "sample.npz", "sample.json"


def cache_dir(run) -> Path:
    d, cfg = runview._run(run)
    if rundir.is_shipped(d):
        return acc_home() / "pretrained-cache" / cfg.run_id / rundir.EVAL / "large"
    return rundir.eval_dir(d) / "large"


def requests_dir(root=None) -> Path:
    return (Path(root) if root is not None else acc_home()) / REQUESTS


# ----- what a run can do ------------------------------------------------------------------------
def cannot_embed(run) -> str | None:
    """Why the run's whole dataset cannot be embedded (one sentence with what to do), or None."""
    d, cfg = runview._run(run)
    step = _checkpoint_step(d)
    if rundir.is_shipped(d) and not rundir.checkpoint_path(d).exists():
        name = rundir.read_meta(d).get("name", d.name)
        with_weights = _shipped_with_weights(str(d.parent), cfg.data.source)
        pick = f" ({', '.join(with_weights)})" if with_weights else ""
        return (f"the shipped run {name} ships without weights (no checkpoint.pt), so only its "
                f"probe subset can be shown; pick a shipped run with weights{pick}, or train "
                f"the same scenario with another seed on the Train page")
    if step is None:
        return "this run has no checkpoint yet; wait until it has trained"
    if step < cfg.train.steps:
        return (f"this run's last checkpoint is at step {step} of {cfg.train.steps}; the whole-"
                "dataset view embeds the final network, so wait until the run is done")
    return None


@lru_cache(maxsize=8)
def _shipped_with_weights(root: str, source: str) -> tuple[str, ...]:
    """Names of the shipped runs on `source` that ship weights (the shipped folder is
    read-only, so it is listed once per process, not on every page refresh)."""
    return tuple(sorted(rundir.read_meta(p.parent).get("name", p.parent.name)
                        for p in Path(root).glob(f"*/{rundir.CHECKPOINT}")
                        if rundir.read_config(p.parent).data.source == source))


def _checkpoint_step(d: Path) -> int | None:
    """The checkpoint's step, read once per file version (pages ask every second)."""
    path = rundir.checkpoint_path(d)
    try:
        return _step_of(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None


@lru_cache(maxsize=64)
def _step_of(path: str, mtime: int) -> int | None:
    return rundir.checkpoint_step(Path(path).parent)


def dataset_size(run) -> int:
    return len(runview.dataset(run))


# ----- requests ---------------------------------------------------------------------------------
def request(run, sample_size: int = DEFAULT_SAMPLE, precision: str | None = None, *,
            root=None, start_worker: bool = True) -> Path:
    """Queue the large-sample job of `run` for the worker (started unless `start_worker` is
    False); returns the request file. Raises ValueError when the run cannot be embedded."""
    reason = cannot_embed(run)
    if reason:
        raise ValueError(reason)
    if int(sample_size) < 1:
        raise ValueError(f"the sample size must be at least 1, got {sample_size}")
    d, cfg = runview._run(run)
    folder = requests_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    write_progress(run, state="queued", phase="waiting for the worker", done=0,
                   total=min(int(sample_size), dataset_size(run)))
    path = folder / f"{cfg.run_id}.json"
    atomic_write_json(path, {"run_id": cfg.run_id, "dir": str(Path(d).resolve()),
                             "sample_size": int(sample_size), "precision": precision,
                             "requested_at": time.time()})
    if start_worker:
        from acc_core.worker import ensure_worker

        ensure_worker(folder.parent)
    return path


def pending(root=None) -> bool:
    """Whether a request waits (the worker does not exit while one does)."""
    folder = requests_dir(root)
    return folder.is_dir() and any(folder.glob("*.json"))


def _put_back(running: Path) -> None:
    """A claimed request returns to the queue, unless a newer request replaced it."""
    waiting = running.with_suffix(".json")
    try:
        if waiting.exists():
            running.unlink()
        else:
            os.replace(running, waiting)
    except FileNotFoundError:
        pass


def _requeue_orphans(folder: Path) -> None:
    from acc_core.records import pid_alive

    for running in folder.glob("*.running"):
        try:
            owner = json.loads(running.read_text()).get("owner") or {}
        except (OSError, ValueError):
            owner = {}
        if owner.get("host") == socket.gethostname() and not pid_alive(owner.get("pid")):
            _put_back(running)


def serve_next(root=None, *, should_stop=None, device: str | None = None) -> bool:
    """Claim and compute the oldest waiting request; False when none waits."""
    from acc_core import largejob

    folder = requests_dir(root)
    if not folder.is_dir():
        return False
    _requeue_orphans(folder)
    for req in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        running = req.with_suffix(".running")
        try:
            os.link(req, running)  # fails if another worker holds this run's request
            same = os.stat(req).st_ino == os.stat(running).st_ino
            job = json.loads(running.read_text())
        except (FileExistsError, FileNotFoundError, ValueError):
            continue
        if same:
            req.unlink(missing_ok=True)
        job["owner"] = {"pid": os.getpid(), "host": socket.gethostname()}
        atomic_write_json(running, job)
        try:
            run = _locate(job, root)
            out = largejob.run_job(run, job, device=device, should_stop=should_stop)
        except Exception as e:  # noqa: BLE001 (a broken run fails its job, not the worker)
            out = "failed"
            _fail(job, e)
        if out == "interrupted":
            _put_back(running)
        else:
            running.unlink(missing_ok=True)
        return True
    return False


def _locate(job: dict, root):
    from acc_core.store import RunStore

    rec = RunStore(root).get(job["run_id"])
    return rec if rec is not None else job["dir"]


def _fail(job: dict, e: Exception) -> None:
    import logging

    logging.getLogger("acc_core.largeview").warning("large sample of %s failed: %s",
                                                     job.get("run_id"), e, exc_info=True)
    try:
        write_progress(job["dir"], state="failed", phase="failed",
                       message=f"{type(e).__name__}: {e}" if not isinstance(
                           e, ValueError) else str(e))
    except Exception:  # noqa: BLE001 (the run folder itself is unreadable)
        pass


# ----- progress and the cache ---------------------------------------------------------------------
def write_progress(run, **fields) -> None:
    folder = cache_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / PROGRESS, {**fields, "updated_at": time.time()})


def progress(run) -> dict | None:
    try:
        return json.loads((cache_dir(run) / PROGRESS).read_text())
    except (OSError, ValueError):
        return None


def manifest(run) -> dict:
    """The complete large sample's manifest; ValueError (what to do) when there is none."""
    path = cache_dir(run) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError("this run has no large sample yet; compute it on the Embeddings page "
                         "(view: whole dataset) or with `python -m acc_core.largejob RUN`") from None


def ready(run) -> bool:
    """Whether a complete large sample of the run's current final checkpoint is cached."""
    try:
        m = manifest(run)
    except ValueError:
        return False
    d, _ = runview._run(run)
    return m.get("step") == _checkpoint_step(d)


def load(run) -> dict:
    """Every array of the cached sample (read once per file version)."""
    manifest(run)
    path = cache_dir(run) / SAMPLE
    return _load(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _load(path: str, mtime: int) -> dict:
    from acc_core.data.base import DataError

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"the large sample {path} is unreadable ({e}); delete its folder and "
                        "compute it again") from None


def embeddings(run, rep=None) -> dict:
    """As `runview.embeddings` for the large sample: {u, indices, factors, factor_names, step,
    rep, split, xy, nn, nnd}."""
    _, cfg = runview._run(run)
    rep = cfg.method.check_representation(rep)
    m, z = manifest(run), load(run)
    if f"rep_{rep}" not in z:
        raise ValueError(f"the large sample has no {rep!r} codes; compute it again")
    u = z[f"rep_{rep}"]
    if cfg.method.unit_vectors(cfg, rep):
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    return {"u": u, "indices": z["indices"].astype(np.int64),
            "factors": z["factors"].astype(np.int64), "factor_names": runview._factor_names(cfg),
            "step": int(m["step"]), "rep": rep, "split": m.get("split", "train"),
            "xy": z[f"xy_{rep}"], "nn": z[f"nn_{rep}"], "nnd": z[f"nnd_{rep}"]}

"""The Ray engine of a sweep: each run is a Ray task (a trial) of `cpus_per_trial` CPUs.

Without an address Ray starts embedded on this machine: its servers bound to the loopback
interface, no dashboard, `num_cpus` CPUs, an object store of OBJECT_STORE_MB, its session
files in a temporary folder removed at the end. With `address` it joins a running cluster
(`ray start --head` on the head node, `ray://host:10001` through Ray Client).

Where a run's folder is written:
- shared store (always when embedded; `shared_store=True` on a cluster whose nodes mount the
  store at the same path): the trial claims the run in the store and trains into its folder,
  exactly as `acc train` would;
- otherwise the driver claims the run and keeps its heartbeat, the trial trains into a scratch
  store on its node and returns the finished run folder as a tar archive, and the driver
  files it in the store and marks the run done.

A trial whose process dies (killed, out of memory, a lost node) is retried by Ray up to
`retries` times; the retry resumes from the run's last checkpoint (`acc_core.train`) when the
store is shared, and retrains from the start on a scratch store on another node.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import uuid
from collections import deque
from pathlib import Path

MISSING = "Ray is not installed: pip install 'acc-explorer[cluster]' (or use --engine local)"
OBJECT_STORE_MB = 128  # embedded: trials return small dicts; Ray's minimum is 75 MB
log = logging.getLogger("acc_core.sweep_ray")


def available() -> bool:
    return importlib.util.find_spec("ray") is not None


def require():
    try:
        import ray
    except ImportError:
        raise ValueError(MISSING) from None
    return ray


@contextlib.contextmanager
def connect(address: str | None = None, cpus: int | None = None):
    """Ray for the sweep's duration: embedded (loopback only) or a cluster's; a Ray already
    initialised in this process is used as it is and left running."""
    ray = require()
    if ray.is_initialized():
        yield ray
        return
    temp = None
    if address:
        kw = {"address": address}
    else:
        temp = tempfile.mkdtemp(prefix="acc-ray-")  # short: socket paths must fit in 107 bytes
        kw = {"num_cpus": cpus or os.cpu_count() or 1, "include_dashboard": False,
              "_node_ip_address": "127.0.0.1", "object_store_memory": OBJECT_STORE_MB << 20,
              "_temp_dir": temp}
    try:
        with _loopback(not address or _is_local(address)):
            ray.init(**kw, logging_level=logging.ERROR if temp else logging.WARNING,
                     log_to_driver=False)
    except (ConnectionError, TimeoutError) as e:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
        raise ValueError(f"cannot reach the Ray cluster at {address} ({str(e).splitlines()[0]});"
                         " check the address, that the head node runs `ray start --head`, and "
                         "its token (RAY_AUTH_MODE, RAY_AUTH_TOKEN)") from None
    try:
        yield ray
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def _is_local(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


@contextlib.contextmanager
def _loopback(on: bool):
    """ray.init turns a loopback address into the host's (for clusters); with clusters off it
    keeps 127.0.0.1, and the Ray it starts listens on the loopback interface only."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = before and not on
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def trial(root: str, config_json: str, shared: bool, device, threads: int) -> dict:
    """One run, in a Ray worker process (which runs nothing else meanwhile)."""
    import torch

    from acc_core.config import RunConfig
    from acc_core.store import RunStore
    from acc_core.sweep_run import train_one

    torch.set_num_threads(threads)
    owner = f"sweep-trial-{socket.gethostname()}-{os.getpid()}"
    cfg = RunConfig.from_json(config_json)
    if shared:
        return train_one(RunStore(root), cfg.run_id, owner, device=device)
    scratch = Path(tempfile.gettempdir()) / "acc-sweep" / cfg.run_id  # a retry here resumes
    store = RunStore(scratch, pretrained_dir=scratch / "no-shipped-runs")
    store.submit(cfg, retry=True)
    out = train_one(store, cfg.run_id, owner, device=device)
    if out["status"] == "done":
        out["archive"] = pack(scratch / cfg.run_id)
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):  # the last trial on this node leaves nothing
            scratch.parent.rmdir()
    return out


def pack(run_dir: Path) -> bytes:
    """A run folder as an uncompressed tar (checkpoints and npz snapshots barely compress)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(run_dir, arcname=".")
    return buf.getvalue()


def file_run(store, run_id: str, archive: bytes) -> None:
    """Put a run folder trained elsewhere in the store's folder of that run (swapped in whole,
    so a reader never sees half of it)."""
    from acc_core import rundir

    incoming = store.root / f".incoming-{run_id}-{uuid.uuid4().hex[:6]}"
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
            tar.extractall(incoming, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        got = rundir.read_config(incoming).run_id
        if got != run_id:
            raise ValueError(f"a trial returned run {got} for run {run_id}")
        dest = store.root / run_id
        aside = store.root / f".deleted-{run_id}-{uuid.uuid4().hex[:6]}"
        if dest.exists():
            os.replace(dest, aside)
        os.replace(incoming, dest)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


class DriverBeat(threading.Thread):
    """The heartbeat of the runs the driver holds for trials on other nodes."""

    def __init__(self, store, owner: str):
        super().__init__(daemon=True, name="sweep-driver-heartbeat")
        self.store, self.owner, self.runs = store, owner, {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(1.0):
            for rid, steps in list(self.runs.items()):
                with contextlib.suppress(Exception):  # a busy database: the next beat
                    self.store.heartbeat(rid, self.owner, 0, steps)

    def stop(self) -> None:
        self._done.set()


def run(store, run_ids: list[str], *, address=None, cpus=None, cpus_per_trial: int = 1,
        gpus_per_trial: float = 0.0, retries: int = 3, shared_store=None, device=None,
        report=lambda: None) -> dict:
    """Train the runs as Ray tasks, as many at once as the cluster has CPUs for."""
    # Embedded: the trials share this machine's store (False tries the cluster path here).
    shared = address is None if shared_store is None else bool(shared_store)
    owner = f"sweep-{os.getpid()}"
    results: dict[str, dict] = {}
    with connect(address, cpus) as ray:
        remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                            max_retries=retries)(trial)
        beat = DriverBeat(store, owner)
        beat.start()
        pending, inflight, lost = deque(run_ids), {}, {}
        try:
            while pending or inflight:
                free = int(ray.cluster_resources().get("CPU", 1) // cpus_per_trial) - len(inflight)
                while pending and (free > 0 or not inflight):
                    rid = pending.popleft()
                    rec = store.get(rid)
                    if not shared:
                        if store.claim(rid, owner, os.getpid()) is None:
                            results[rid] = {"status": rec.status, "reason": rec.reason,
                                            "step": rec.step}
                            continue  # another process trains it: its outcome stands
                        beat.runs[rid] = rec.steps
                    ref = remote.remote(str(store.root), rec.config.canonical_json(), shared,
                                        device, cpus_per_trial)
                    inflight[ref] = rid
                    free -= 1
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
                for ref in ready:
                    rid = inflight.pop(ref)
                    res = _collect(ray, ref, store, rid, owner, shared)
                    beat.runs.pop(rid, None)
                    if res["status"] == "lost" and lost.get(rid, 0) < retries:
                        lost[rid] = lost.get(rid, 0) + 1
                        pending.append(rid)  # taken from its trial as stale: train it again
                        continue
                    results[rid] = res
                report()
        finally:
            beat.stop()
            for rid in list(beat.runs):  # interrupted here: a rerun of the sweep resumes them
                store.finish(rid, "interrupted", step=0, worker_id=owner,
                             reason="the sweep stopped before its trial returned")
    return results


def _collect(ray, ref, store, rid: str, owner: str, shared: bool) -> dict:
    """A trial's outcome; in a store the trials do not share, its run filed by the driver."""
    try:
        res = ray.get(ref)
    except Exception as e:  # noqa: BLE001 (the trial died more often than its retries, or raised)
        reason = f"its trial failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        log.warning("run %s: %s", rid, reason)
        if shared:
            store.reap_dead()  # its run is interrupted (a rerun resumes it) or failed
        else:
            store.finish(rid, "failed", step=0, reason=reason, worker_id=owner)
        return {"status": "failed", "reason": reason, "step": 0}
    if not shared:
        archive = res.pop("archive", None)
        if archive is not None:
            file_run(store, rid, archive)
        store.finish(rid, res["status"] if res["status"] in ("done", "failed", "cancelled")
                     else "interrupted", step=int(res.get("step", 0)), reason=res.get("reason"),
                     worker_id=owner)
    return res

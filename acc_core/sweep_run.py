"""The sweep driver and its local engine (DESIGN.md, "Layout": sweep).

`run_sweep` submits a sweep's runs to the store, records the sweep (`acc_core.sweep`), skips
the runs that are done, trains the others through `runner.train_claimed` with the chosen
engine, and reports progress (done / running / failed, and an estimate) as it goes:

- "local": one run after another in this process, the same path `acc train` takes;
- "ray": Ray tasks (`acc_core.sweep_ray`), on a Ray embedded on this machine or on a cluster;
- "auto": Ray when it is installed, else local (the same runs, one at a time).

Each run trains on `cpus_per_trial` torch threads whatever the engine, so a sweep gives the
same weights on either (torch sums in another order on another thread count).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from acc_core import sweep

ENGINES = ("auto", "local", "ray")


@dataclass(frozen=True)
class Progress:
    name: str
    total: int  # runs in the sweep
    done: int
    running: int
    failed: int  # failed or cancelled
    waiting: int  # queued, interrupted (resumes), or dispatched but not started
    elapsed_s: float
    eta_s: float | None  # None until something has trained


class Tracker:
    """Progress from the store's index, at most every `every_s` seconds."""

    def __init__(self, store, name, run_ids, todo, on_progress=None, every_s: float = 0.5):
        self.store, self.name, self.ids, self.todo = store, name, list(run_ids), list(todo)
        self.on_progress, self.every_s = on_progress, every_s
        self.t0, self.last = time.monotonic(), 0.0

    def progress(self) -> Progress:
        c = sweep.counts(self.store, self.ids)
        elapsed = time.monotonic() - self.t0
        skipped = len(self.ids) - len(self.todo)
        finished = max(c["done"] + c["failed"] - skipped, 0)  # trained (or failed) since the start
        work = finished + c["fraction"]  # runs' worth of training done here
        left = max(len(self.todo) - work, 0.0)
        eta = left * elapsed / work if work > 0 else None
        return Progress(self.name, c["total"], c["done"], c["running"], c["failed"],
                        c["waiting"], elapsed, eta)

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self.last < self.every_s):
            return
        self.last = now
        self.on_progress(self.progress())


def pick_engine(engine: str, address: str | None = None) -> str:
    from acc_core import sweep_ray

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if address and engine == "local":
        raise ValueError("--address joins a Ray cluster: it needs --engine ray (or auto)")
    if engine == "ray" or address:
        sweep_ray.require()
        return "ray"
    if engine == "auto":
        return "ray" if sweep_ray.available() else "local"
    return "local"


def run_sweep(configs, *, store=None, engine: str = "auto", name: str | None = None,
              spec: dict | None = None, address: str | None = None, cpus: int | None = None,
              cpus_per_trial: int = 1, gpus_per_trial: float = 0.0, retries: int = 3,
              shared_store: bool | None = None, device: str | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> dict:
    """Train every config that is not done yet. Returns {name, engine, total, skipped, done,
    failed: {run_id: reason}, wall_s}."""
    from acc_core.cli import check_config
    from acc_core.store import RunStore

    if cpus_per_trial < 1:
        raise ValueError(f"cpus per trial must be >= 1, got {cpus_per_trial}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    engine = pick_engine(engine, address)
    for cfg in configs:
        check_config(cfg)  # an impossible run fails here, before anything is queued
    store = store or RunStore()
    store.reap_dead()
    recs = [store.submit(cfg, retry=True) for cfg in configs]
    ids = list(dict.fromkeys(r.run_id for r in recs))
    name = name or sweep.default_name(ids)
    sweep.record_sweep(store.root, name, ids, spec)
    todo = [r.run_id for r in recs if r.status != "done"]
    tracker = Tracker(store, name, ids, todo, on_progress)
    tracker.report(force=True)
    t0 = time.monotonic()
    if not todo:
        results = {}
    elif engine == "local":
        results = run_local(store, todo, device=device, threads=cpus_per_trial,
                            report=tracker.report)
    else:
        from acc_core import sweep_ray

        results = sweep_ray.run(store, todo, address=address, cpus=cpus,
                                cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                                retries=retries, shared_store=shared_store, device=device,
                                report=tracker.report)
    tracker.report(force=True)
    failed = {rid: (r.get("reason") or r.get("status")) for rid, r in results.items()
              if r.get("status") != "done"}
    return {"name": name, "engine": engine, "total": len(ids), "skipped": len(ids) - len(todo),
            "done": sum(r.get("status") == "done" for r in results.values()), "failed": failed,
            "wall_s": time.monotonic() - t0, "run_ids": ids}


# ----- training one run -----------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(n: int):
    """`n` intra-op threads for the sweep's trainings, restored after. One thread goes through
    the counted section of acc_core.analysis.arrays, safe beside other users in this process."""
    import torch

    from acc_core.analysis.arrays import single_thread

    if n == 1:
        with single_thread():
            yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_one(store, run_id: str, owner: str, *, device=None, on_progress=None,
              poll_s: float = 1.0) -> dict:
    """Claim the run and train it through `runner.train_claimed` (it resumes from the run's
    checkpoint). If another live process holds the run (a worker, another sweep), wait for
    it: its outcome is this run's. Returns {status, step, reason, lost}."""
    from acc_core.runner import train_claimed

    while True:
        rec = store.claim(run_id, owner, os.getpid())
        if rec is not None:
            return train_claimed(store, rec, owner, device=device, on_progress=on_progress)
        cur = store.get(run_id)
        if cur is None:
            return {"status": "failed", "step": 0, "reason": "the run left the store (deleted)",
                    "lost": False}
        if cur.status not in ("running", "queued", "interrupted"):
            return {"status": cur.status, "step": cur.step, "reason": cur.reason, "lost": False}
        store.reap_dead()  # a trial killed a moment ago: its run becomes resumable
        time.sleep(poll_s if cur.status == "running" else 0.05)


def run_local(store, run_ids: list[str], *, device=None, threads: int = 1,
              report: Callable[[], None] = lambda: None) -> dict:
    """The local engine: the runs one after another in this process."""
    owner = f"sweep-{os.getpid()}"
    out = {}
    with torch_threads(threads):
        for rid in run_ids:
            out[rid] = train_one(store, rid, owner, device=device, on_progress=lambda p: report())
            report()
    return out


def format_progress(p: Progress, width: int = 30) -> str:
    """'[#####.....] 12/40 done · 2 running · 1 failed · eta 3m 10s'."""
    n = int(width * (p.done + p.failed) / max(p.total, 1))
    eta = "" if p.eta_s is None else f" · eta {_duration(p.eta_s)}"
    return (f"[{'#' * n}{'.' * (width - n)}] {p.done}/{p.total} done · {p.running} running · "
            f"{p.failed} failed{eta}")


def _duration(s: float) -> str:
    s = round(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def printer(stream=sys.stderr) -> Callable[[Progress], None]:
    """A progress callback: one line redrawn on a terminal, a line per change elsewhere."""
    tty = stream.isatty()
    last = [None]

    def show(p: Progress) -> None:
        key = (p.done, p.running, p.failed)
        if not tty and key == last[0]:
            return
        last[0] = key
        stream.write(("\r" if tty else "") + format_progress(p) + (" " if tty else "\n"))
        stream.flush()

    return show

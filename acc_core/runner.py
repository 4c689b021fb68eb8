"""Train one claimed run: the single path the worker, `acc train` and `acc pretrained build`
share (DESIGN.md, worker.py: one "train a claimed run" path).

The caller has claimed the run in the store (`RunStore.claim` / `claim_next`). This function

- starts a side thread that writes the heartbeat and the latest step about once a second and
  reads cancel requests (so `acc cancel` stops a foreground run as it stops a worker's);
- trains with `acc_core.train.train`, which resumes from the run's checkpoint;
- records the outcome: done, cancelled (asked for), interrupted (stopped by its process; it
  resumes with the next worker), or failed (with the reason; a bug's traceback goes to the
  logger). A KeyboardInterrupt marks the run interrupted, then propagates.

If the store took the run away meanwhile (reaped as stale), training stops at the next step
and the outcome is left to whoever holds the run now.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from acc_core.data.base import DataError

log = logging.getLogger("acc_core.runner")
HEARTBEAT_S = 1.0


class Heartbeat(threading.Thread):
    """Writes the latest progress about once a second and reads cancel requests, off the
    training thread: `progress` and `should_stop` stay in-memory and cost nothing per step."""

    def __init__(self, store, rec, owner_id: str, on_progress: Callable[[dict], None] | None = None):
        super().__init__(daemon=True, name=f"heartbeat-{rec.run_id}")
        self.store, self.run_id, self.owner_id = store, rec.run_id, owner_id
        self.step, self.steps = rec.step, rec.steps
        self.cancel = self.lost = False
        self.on_progress = on_progress
        self._done = threading.Event()

    def progress(self, info: dict) -> None:
        self.step = int(info.get("step", self.step))
        self.steps = int(info.get("steps", self.steps))
        if self.on_progress is not None:
            self.on_progress(info)

    def beat(self) -> None:
        try:
            if not self.store.heartbeat(self.run_id, self.owner_id, self.step, self.steps):
                self.lost = True
                return
            self.cancel = self.store.cancel_requested(self.run_id)
        except DataError as e:  # a busy database: try again next beat
            log.warning("heartbeat of run %s: %s", self.run_id, e)

    def run(self) -> None:
        while not self._done.wait(HEARTBEAT_S) and not self.lost:
            self.beat()

    def stop(self) -> None:
        self._done.set()
        self.join()


def train_claimed(store, rec, owner_id: str, *, device: str | None = None,
                  stop_requested: Callable[[], bool] | None = None,
                  on_progress: Callable[[dict], None] | None = None, train_fn=None,
                  precompute: bool = False) -> dict:
    """Train the claimed run `rec` to its end. Returns {status, step, reason, lost}.
    `precompute`: once done, compute the views a page would otherwise wait for (the worker
    does; a foreground `acc train` returns at once)."""
    from acc_core.train import train as default_train

    train = train_fn or default_train
    beat = Heartbeat(store, rec, owner_id, on_progress)
    beat.start()
    stop = stop_requested or (lambda: False)
    try:
        result = train(rec.config, rec.dir, device=device, progress=beat.progress,
                       should_stop=lambda: stop() or beat.cancel or beat.lost)
    except Exception as e:  # a bug or bad data fails this run only
        beat.stop()
        if isinstance(e, (DataError, ValueError)):
            log.warning("run %s failed: %s", rec.run_id, e)
        else:
            log.exception("run %s failed", rec.run_id)
        reason = str(e) if isinstance(e, (DataError, ValueError)) else f"{type(e).__name__}: {e}"
        store.finish(rec.run_id, "failed", step=beat.step, reason=reason, worker_id=owner_id)
        return {"status": "failed", "step": beat.step, "reason": reason, "lost": beat.lost}
    except BaseException:  # KeyboardInterrupt (Ctrl+C), SystemExit
        beat.stop()
        store.finish(rec.run_id, "interrupted", step=beat.step, worker_id=owner_id,
                     reason=f"stopped at step {beat.step}; it resumes when trained again")
        raise
    beat.stop()
    if beat.lost:
        log.warning("run %s was taken from %s (reaped as stale); leaving it", rec.run_id, owner_id)
        return {"status": "lost", "step": beat.step, "reason": "taken over by another process",
                "lost": True}
    status, step = result.get("status"), int(result.get("step", beat.step))
    reason = result.get("reason")
    if status == "cancelled" and not store.cancel_requested(rec.run_id):
        status, reason = "interrupted", f"stopped at step {step}; it resumes when trained again"
    elif status not in ("done", "failed", "cancelled"):
        status, reason = "failed", f"training returned an unknown status {status!r}"
    if status == "done" and precompute:
        precompute_views(rec.dir)  # before `done`: a page that opens the run finds it ready
    store.finish(rec.run_id, status, step=step, reason=reason, worker_id=owner_id)
    if status == "done" and precompute:
        precompute_scores(rec.dir)
        # Then the UMAP of every other snapshot, for the Embeddings page's step slider; only
        # while no other run waits for this worker, and it stops as soon as one is queued.
        idle = lambda: not stop() and not store.list_runs(status=("queued",), include_pretrained=False)  # noqa: E731
        precompute_views(rec.dir, every_snapshot=True, keep_going=idle)
    return {"status": status, "step": step, "reason": reason, "lost": False}


def warm_up_umap() -> threading.Thread:
    """Compile UMAP's numba kernels in the background (tens of seconds, once per process),
    so that the first finished run's UMAP takes seconds, not a minute."""
    def work():
        try:
            import numpy as np

            from acc_core.analysis import project

            project.umap(np.random.default_rng(0).normal(size=(64, 4)), n_components=2, seed=0)
        except Exception:  # noqa: BLE001 (only an optimisation)
            log.warning("UMAP warm-up failed", exc_info=True)

    t = threading.Thread(target=work, daemon=True, name="umap-warm-up")
    t.start()
    return t


def precompute_views(run_dir, *, every_snapshot: bool = False,
                     keep_going: Callable[[], bool] = lambda: True) -> None:
    """The initial and final UMAP of every code, so the Embeddings page finds them ready (UMAP is the one
    projection that takes seconds, and its first call in a process compiles for tens of
    seconds). `every_snapshot`: the default code's UMAP at every other snapshot step instead
    (what the page's step slider shows), one step at a time while `keep_going()`; each takes
    a second or two on a 2-core CPU, so the worker does them after the run is done rather
    than slow its training. A failure here never touches the finished run."""
    from acc_core import evaluate, rundir

    try:
        method = rundir.read_config(run_dir).method
        if every_snapshot:
            steps = rundir.snapshot_steps(run_dir)
            for step in steps[1:-1]:
                if not keep_going():
                    return
                evaluate.projection(run_dir, step, "umap", rep=method.representations[0])
            return
        for rep in method.representations:
            for which in ("initial", "final"):
                evaluate.projection(run_dir, which, "umap", rep=rep)
    except Exception:  # noqa: BLE001 (the page computes it on demand instead)
        log.warning("could not precompute the UMAP of %s", run_dir, exc_info=True)


def precompute_scores(run_dir) -> None:
    """The leaderboard's scores (the standard report and the disentanglement metrics of every
    alignment), computed right after the run is marked done: seconds the user need not wait
    for. A failure here never touches the finished run."""
    from acc_core import evaluate

    try:
        evaluate.report(run_dir)
        evaluate.every_alignment(run_dir)
    except Exception:  # noqa: BLE001 (the leaderboard computes them on demand instead)
        log.warning("could not precompute the scores of %s", run_dir, exc_info=True)

"""The background worker: a real process is killed mid-run and the next one resumes it; one
worker per device; cancels, SIGTERM, failures inside training, idle exit, ensure_worker."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from acc_core import worker as worker_mod
from acc_core import runner as runner_mod
from acc_core.config import RunConfig, TrainConfig
from acc_core.paths import atomic_write_json
from acc_core.store import RunStore, pid_alive
from acc_core.worker import EXIT_BUSY, ensure_worker, lock_path, run_worker, worker_alive, workers

TESTS = Path(__file__).resolve().parent
FAIL_SEED, NAN_SEED = 13, 14


def fake_train(config, run_dir, *, device=None, progress=None, should_stop=None):
    """The train() contract, fast: resumes from a checkpoint file, one log line per step.

    Seconds per step come from env FAKE_STEP_S; seed 13 raises, seed 14 'diverges'."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.json"
    start = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    with open(run_dir / "starts.txt", "a") as f:
        f.write(f"{start} {os.getpid()}\n")
    if config.train.seed == FAIL_SEED:
        raise RuntimeError("boom in the data loader")
    delay = float(os.environ.get("FAKE_STEP_S", "0"))
    steps = config.train.steps
    for step in range(start + 1, steps + 1):
        if should_stop is not None and should_stop():
            return {"status": "cancelled", "step": step - 1, "reason": "cancelled by user"}
        if config.train.seed == NAN_SEED and step == 3:
            return {"status": "failed", "step": 2, "reason": "non-finite loss (nan) at step 3"}
        time.sleep(delay)
        with open(run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "loss": 1.0 / step}) + "\n")
        atomic_write_json(ckpt, {"step": step})
        if progress is not None:
            progress({"step": step, "steps": steps, "loss": 1.0 / step, "steps_per_s": 1.0, "eta_s": 0.0})
    return {"status": "done", "step": steps, "reason": None}


def cfg(seed: int = 0, steps: int = 10) -> RunConfig:
    return RunConfig(train=TrainConfig(seed=seed, steps=steps))


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home", pretrained_dir=tmp_path / "pretrained")


def worker_env(store, step_s: float) -> dict:
    paths = [str(TESTS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, ACC_HOME=str(store.root), ACC_TRAIN_FN="test_worker:fake_train",
                FAKE_STEP_S=str(step_s), PYTHONPATH=os.pathsep.join(paths))


def spawn_worker(store, step_s: float, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "acc_core.worker", "--poll", "0.05", *args],
                            env=worker_env(store, step_s), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def starts(rec) -> list[int]:
    return [int(line.split()[0]) for line in (rec.dir / "starts.txt").read_text().splitlines()]


# ----- in-process --------------------------------------------------------------------------------
def test_worker_trains_the_queue_and_survives_a_failing_run(store):
    ok1, boom, nan, ok2 = (store.submit(cfg(s)) for s in (1, FAIL_SEED, NAN_SEED, 2))
    assert run_worker(store.root, once=True, poll=0.01, train_fn=fake_train) == 0
    got = {r.run_id: r for r in store.list_runs()}
    assert got[ok1.run_id].status == got[ok2.run_id].status == "done"
    assert got[ok1.run_id].step == 10
    assert got[boom.run_id].status == "failed"
    assert got[boom.run_id].reason == "RuntimeError: boom in the data loader"
    assert (got[nan.run_id].status, got[nan.run_id].step) == ("failed", 2)
    assert "non-finite" in got[nan.run_id].reason
    assert not worker_alive(store.root)  # the lock went with it


def test_a_broken_train_hook_fails_the_run_and_says_why(store, monkeypatch):
    monkeypatch.setenv("ACC_TRAIN_FN", "no_such_module_anywhere:train")
    rec = store.submit(cfg(1))
    assert run_worker(store.root, once=True, poll=0.01) == 0
    r = store.get(rec.run_id)
    assert r.status == "failed" and "No module named 'no_such_module_anywhere'" in r.reason


def test_heartbeat_is_throttled_and_cancel_stops_a_running_run(store, monkeypatch):
    monkeypatch.setattr(runner_mod, "HEARTBEAT_S", 0.1)
    beats = []
    real = RunStore.heartbeat
    monkeypatch.setattr(RunStore, "heartbeat", lambda self, *a: beats.append(a) or real(self, *a))
    steps_seen = []

    def counting_train(config, run_dir, **kw):
        progress = kw["progress"]
        kw["progress"] = lambda p: (steps_seen.append(p["step"]), progress(p))
        return fake_train(config, run_dir, **kw)

    monkeypatch.setenv("FAKE_STEP_S", "0.005")

    rec = store.submit(cfg(1, steps=100_000))
    t = threading.Thread(target=run_worker, args=(store.root,),
                         kwargs=dict(once=True, poll=0.01, train_fn=counting_train))
    t.start()
    wait_for(lambda: store.get(rec.run_id).step >= 20, what="progress in the store")
    store.request_cancel(rec.run_id)
    t.join(timeout=20)
    assert not t.is_alive()
    r = store.get(rec.run_id)
    assert r.status == "cancelled" and 20 <= r.step < 100_000
    assert len(steps_seen) > 3 * len(beats)  # DB writes are throttled, not one per step
    assert all(a[0] == rec.run_id for a in beats)


def test_second_worker_on_the_same_device_exits_at_once(store, caplog):
    fd = worker_mod._try_lock(lock_path(store.root, "cpu"))
    try:
        t0 = time.monotonic()
        assert run_worker(store.root, device="cpu", once=True, train_fn=fake_train) == EXIT_BUSY
        assert time.monotonic() - t0 < 3
        assert "another worker already trains on device 'cpu'" in caplog.text
        assert worker_alive(store.root, device="cpu") and not worker_alive(store.root)
    finally:
        os.close(fd)
    assert not worker_alive(store.root, device="cpu")


def test_idle_exit(store):
    t0 = time.monotonic()
    assert run_worker(store.root, poll=0.02, idle_exit=0.2, train_fn=fake_train) == 0
    assert 0.2 <= time.monotonic() - t0 < 5


# ----- real worker processes -------------------------------------------------------------------
def test_killed_worker_run_is_reaped_then_resumed_to_done(store):
    rec = store.submit(cfg(1, steps=40))
    proc = spawn_worker(store, 0.05)
    try:
        wait_for(lambda: store.get(rec.run_id).step >= 3, what="the worker to make progress")
        assert worker_alive(store.root)
        assert workers(store.root)[0]["pid"] == proc.pid
        proc.kill()
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert not worker_alive(store.root)  # the OS dropped the lock
    assert store.get(rec.run_id).status == "running"  # until someone notices
    assert store.reap_dead() == [rec.run_id]
    r = store.get(rec.run_id)
    assert r.status == "interrupted" and r.reason.startswith("worker died at step")
    assert run_worker(store.root, once=True, poll=0.01, train_fn=fake_train) == 0
    r = store.get(rec.run_id)
    assert (r.status, r.step) == ("done", 40)
    first, second = starts(r)
    assert first == 0 and second >= 3  # resumed from the checkpoint, not from scratch
    assert [x["step"] for x in store.read_log(rec.run_id)] == list(range(1, 41))


def test_sigterm_finishes_the_step_marks_interrupted_and_exits(store):
    rec = store.submit(cfg(1, steps=400))
    proc = spawn_worker(store, 0.02)
    try:
        wait_for(lambda: store.get(rec.run_id).step >= 3, what="the worker to make progress")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    r = store.get(rec.run_id)
    assert r.status == "interrupted" and "stopped at step" in r.reason
    ckpt = json.loads((r.dir / "checkpoint.json").read_text())["step"]
    assert r.step == ckpt and 3 <= ckpt < 400
    assert "received SIGTERM" in out


def _ensure_after_barrier(root, barrier, q):
    barrier.wait()
    q.put(ensure_worker(root, exit_with_me=False))  # these processes end at once


def worker_pids(root: Path) -> list[int]:
    """Live `acc_core.worker` processes whose ACC_HOME is `root` (Linux /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"acc_core.worker" in cmd and f"ACC_HOME={root}".encode() in env and pid_alive(int(d.name)):
            pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_two_ensure_worker_calls_at_once_leave_one_worker(store, monkeypatch):
    for k, v in worker_env(store, 0.0).items():
        monkeypatch.setenv(k, v)
    ctx = mp.get_context("fork")
    barrier, q = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_ensure_after_barrier, args=(store.root, barrier, q)) for _ in range(2)]
    for p in procs:
        p.start()
    started = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    try:
        assert any(started)
        wait_for(lambda: worker_alive(store.root), what="a worker to take the lock")
        # A losing worker waits at most LOCK_WAIT_S for the lock, then exits; on a loaded
        # machine its start-up alone can take seconds, so wait for it rather than sleep.
        pids = wait_for(lambda: (lambda p: p if len(p) == 1 else None)(worker_pids(store.root)),
                        timeout=60, what="the losing worker to exit")
        assert len(pids) == 1 and workers(store.root)[0]["pid"] == pids[0]
        assert ensure_worker(store.root) is False  # alive: nothing new is started
        rec = store.submit(cfg(3, steps=5))  # the surviving worker trains what is queued
        wait_for(lambda: store.get(rec.run_id).status == "done", what="the run to be trained")
        log = (store.root / "worker.log").read_text()
        assert log.count("started on device") == 1
        if all(started):
            assert "another worker already trains" in log
    finally:
        for pid in worker_pids(store.root):
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not worker_pids(store.root), what="the worker to exit")


def test_ensure_worker_twice_in_one_process_starts_one(store, monkeypatch):
    for k, v in worker_env(store, 0.0).items():
        monkeypatch.setenv(k, v)
    assert ensure_worker(store.root) is True
    proc = worker_mod._SPAWNED[(str(store.root), "auto")]
    try:
        assert ensure_worker(store.root) is False  # ours is still starting: no second one
        wait_for(lambda: worker_alive(store.root), what="the worker to take the lock")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0 and not worker_alive(store.root)


def test_the_apps_worker_exits_when_the_app_is_gone_and_the_queue_is_empty(store):
    """`exit_with`: the app's server pid. Once it is gone the worker finishes the queue, then
    exits at once instead of idling for minutes."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    rec = store.submit(cfg(1))
    t0 = time.monotonic()
    assert run_worker(store.root, poll=0.01, idle_exit=600, train_fn=fake_train,
                      exit_with=gone.pid) == 0
    assert time.monotonic() - t0 < 60
    assert store.get(rec.run_id).status == "done"  # the queued run was still trained


def test_the_worker_precomputes_the_final_umap(store):
    """So the Embeddings page finds a finished run's UMAP ready instead of computing it."""
    from acc_core import evaluate

    from conftest import tiny_shapes_config

    rec = store.submit(tiny_shapes_config(steps=4, probe_size=200))
    assert run_worker(store.root, once=True, poll=0.01, precompute=True) == 0
    r = store.get(rec.run_id)
    assert r.status == "done"
    for step in (0, evaluate.snapshot_steps(r)[-1]):
        assert (r.dir / "eval" / f"umap2_step{step:07d}.npz").exists()

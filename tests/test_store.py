"""The run store: cache hits, atomic claims, status flow, cancels, reaping, logs, snapshots."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from acc_core.config import RunConfig, TrainConfig
from acc_core.data.base import DataError
from acc_core.store import LIVE_PID_GRACE, MAX_CRASHES, RunStore, pid_alive

FORK = mp.get_context("fork")


def cfg(seed: int = 0, steps: int = 10) -> RunConfig:
    return RunConfig(train=TrainConfig(seed=seed, steps=steps))


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "home", pretrained_dir=tmp_path / "pretrained")


def n_rows(store) -> int:
    with sqlite3.connect(store.db_path) as con:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----- submitting -------------------------------------------------------------------------------
def test_submit_same_config_is_a_cache_hit(store):
    a = store.submit(cfg(1), label="first")
    b = store.submit(cfg(1), label="second")
    assert a.run_id == b.run_id == cfg(1).run_id
    assert (a.status, b.label, b.created_at) == ("queued", "first", a.created_at)
    assert n_rows(store) == 1
    on_disk = RunConfig.from_json((store.root / a.run_id / "config.json").read_text())
    assert on_disk.run_id == a.run_id and a.config == cfg(1)
    assert store.submit(cfg(2)).label == cfg(2).describe()  # default label


def test_submit_validates_before_queueing(store):
    bad = RunConfig(train=TrainConfig(temperature=0.0))
    with pytest.raises(ValueError, match="temperature"):
        store.submit(bad)
    assert n_rows(store) == 0 and not (store.root / bad.run_id).exists()


def _submit_after_barrier(root, pretrained, barrier, seeds, q):
    s = RunStore(root, pretrained_dir=pretrained)
    barrier.wait()
    q.put([(r.run_id, r.created_at) for r in (s.submit(cfg(seed)) for seed in seeds)])


def test_two_processes_submitting_the_same_configs_create_one_run_each(store, tmp_path):
    seeds = list(range(10, 20))
    barrier, q = FORK.Barrier(2), FORK.Queue()
    procs = [FORK.Process(target=_submit_after_barrier,
                          args=(store.root, tmp_path / "pretrained", barrier, seeds, q))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert results[0] == results[1]  # both saw the same row, created once
    assert n_rows(store) == len(seeds)


def test_threads_share_a_store_without_sharing_connections(store):
    errors = []

    def work(seed):
        try:
            for i in range(5):
                store.submit(cfg(100 + seed * 10 + i))
                store.list_runs()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and n_rows(store) == 20


# ----- claiming and the status flow ------------------------------------------------------------
def _claim_all(root, pretrained, barrier, name, q):
    s = RunStore(root, pretrained_dir=pretrained)
    barrier.wait()
    got = []
    while (rec := s.claim_next(name, os.getpid())) is not None:
        got.append(rec.run_id)
    q.put(got)


def test_claim_is_atomic_between_two_processes(store, tmp_path):
    ids = {store.submit(cfg(seed)).run_id for seed in range(12)}
    barrier, q = FORK.Barrier(2), FORK.Queue()
    procs = [FORK.Process(target=_claim_all,
                          args=(store.root, tmp_path / "pretrained", barrier, f"w{i}", q))
             for i in range(2)]
    for p in procs:
        p.start()
    a, b = (q.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert not set(a) & set(b)
    assert set(a) | set(b) == ids and len(a) + len(b) == len(ids)
    assert all(r.status == "running" for r in store.list_runs())


def test_status_flow_and_retry(store):
    rec = store.submit(cfg(1, steps=10))
    assert rec.is_live and rec.progress == 0.0 and rec.steps == 10
    run = store.claim_next("w", os.getpid())
    assert (run.run_id, run.status, run.worker_id, run.worker_pid) == (rec.run_id, "running", "w", os.getpid())
    assert store.claim_next("w2", os.getpid()) is None
    assert store.heartbeat(rec.run_id, "w", 4, 10)
    assert not store.heartbeat(rec.run_id, "someone-else", 5, 10)
    assert store.get(rec.run_id).progress == pytest.approx(0.4)
    assert store.finish(rec.run_id, "failed", step=4, reason="non-finite loss", worker_id="w")
    failed = store.get(rec.run_id)
    assert (failed.status, failed.reason, failed.is_live) == ("failed", "non-finite loss", False)
    assert store.submit(cfg(1, steps=10)).status == "failed"  # no silent second training
    again = store.submit(cfg(1, steps=10), retry=True)
    assert (again.status, again.reason, again.step) == ("queued", None, 4)  # resumes
    store.claim_next("w", os.getpid())
    assert store.finish(rec.run_id, "done", step=10)
    assert store.submit(cfg(1, steps=10), retry=True).status == "done"  # done stays done
    with pytest.raises(ValueError, match="valid"):
        store.finish(rec.run_id, "running", step=1)


def test_interrupted_runs_are_resumed_before_queued_ones(store):
    first = store.submit(cfg(1))
    store.claim_next("w", os.getpid())
    later = store.submit(cfg(2))
    store.finish(first.run_id, "interrupted", step=3)
    assert store.claim_next("w", os.getpid()).run_id == first.run_id
    assert store.claim_next("w", os.getpid()).run_id == later.run_id


def test_claim_a_given_run(store):
    rec = store.submit(cfg(1))
    assert store.claim(rec.run_id, "cli", os.getpid()).status == "running"
    assert store.claim(rec.run_id, "cli-2", os.getpid()) is None  # already taken


def test_cancel_queued_and_running_runs(store):
    queued = store.submit(cfg(1))
    running = store.submit(cfg(2))
    store.claim(running.run_id, "w", os.getpid())
    assert store.request_cancel(queued.run_id[:8]).status == "cancelled"  # at once, by prefix
    assert store.claim_next("w", os.getpid()) is None
    rec = store.request_cancel(running.run_id)
    assert rec.status == "running" and rec.cancel_requested
    assert store.cancel_requested(running.run_id) and not store.cancel_requested(queued.run_id)
    store.finish(running.run_id, "cancelled", step=2, worker_id="w")
    done = store.get(running.run_id)
    assert done.status == "cancelled" and not done.cancel_requested
    assert store.request_cancel(running.run_id).status == "cancelled"  # no-op when final


# ----- reaping -------------------------------------------------------------------------------------
def test_reap_dead_worker_pid_becomes_interrupted(store):
    rec = store.submit(cfg(1))
    store.claim_next("w", dead_pid())
    store.heartbeat(rec.run_id, "w", 7, 10)
    alive = store.submit(cfg(2))
    store.claim_next("w-alive", os.getpid())
    assert store.reap_dead() == [rec.run_id]
    r = store.get(rec.run_id)
    assert (r.status, r.reason, r.step, r.crashes) == ("interrupted", "worker died at step 7", 7, 1)
    assert store.get(alive.run_id).status == "running"  # live pid, fresh heartbeat
    assert store.reap_dead() == []


def test_reap_stale_heartbeat(store):
    here = store.submit(cfg(1))
    store.claim_next("w", os.getpid())
    remote = store.submit(cfg(2))
    store.claim_next("w-remote", 12345)
    with sqlite3.connect(store.db_path) as con:  # a worker on another host sharing the folder
        con.execute("UPDATE runs SET worker_host='elsewhere' WHERE run_id=?", (remote.run_id,))
    time.sleep(0.03)
    assert store.reap_dead(stale_after=0.02) == [remote.run_id]  # a live local pid gets longer
    time.sleep(0.03 * LIVE_PID_GRACE)
    assert store.reap_dead(stale_after=0.02) == [here.run_id]
    assert not store.heartbeat(here.run_id, "w", 1, 10)  # the old worker learns it lost the run


def test_reap_pending_cancel_and_crash_limit(store):
    a = store.submit(cfg(1))
    store.claim(a.run_id, "w", dead_pid())
    store.request_cancel(a.run_id)
    store.reap_dead()
    assert store.get(a.run_id).status == "cancelled"
    b = store.submit(cfg(2))
    for _ in range(MAX_CRASHES):
        store.claim(b.run_id, "w", dead_pid())
        store.reap_dead()
    r = store.get(b.run_id)
    assert r.status == "failed" and f"died {MAX_CRASHES} times" in r.reason


def test_pid_alive():
    assert pid_alive(os.getpid()) and not pid_alive(dead_pid()) and not pid_alive(None)


# ----- listing, prefixes, pretrained runs --------------------------------------------------------
def write_pretrained(folder, name, config, step=None):
    d = folder / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config.to_dict()))
    (d / "meta.json").write_text(json.dumps({"name": name, "description": "shipped",
                                             "status": "done", "step": step or config.train.steps}))
    return d


def test_list_newest_first_filters_and_prefixes(store, tmp_path):
    recs = [store.submit(cfg(s)) for s in range(17)]  # 17 hex ids: two share a first character
    write_pretrained(tmp_path / "pretrained", "demo", cfg(99))
    runs = store.list_runs()
    assert [r.run_id for r in runs[:17]] == [r.run_id for r in reversed(recs)]
    assert runs[-1].source == "pretrained" and runs[-1].label == "demo"
    assert len(store.list_runs(include_pretrained=False)) == 17
    store.request_cancel(recs[0].run_id)
    assert [r.run_id for r in store.list_runs(status="cancelled")] == [recs[0].run_id]
    assert [r.source for r in store.list_runs(status=("done",))] == ["pretrained"]
    with pytest.raises(ValueError, match="unknown status"):
        store.list_runs(status="finished")
    assert store.resolve(recs[3].run_id[:10]) == recs[3].run_id
    first = [r.run_id[0] for r in recs]
    shared = next(c for c in first if first.count(c) > 1)
    with pytest.raises(ValueError, match="ambiguous"):
        store.resolve(shared)
    with pytest.raises(ValueError, match="ambiguous"):
        store.get(shared)
    with pytest.raises(ValueError, match="no run matches 'zzz'"):
        store.resolve("zzz")
    assert store.get("zzz") is None


def test_pretrained_runs_are_listed_read_only_and_cache_hits(store, tmp_path):
    d = write_pretrained(tmp_path / "pretrained", "wall-hue", cfg(5), step=10)
    rec = store.submit(cfg(5))  # the same config: no training, the shipped run
    assert (rec.source, rec.status, rec.dir, rec.description) == ("pretrained", "done", d, "shipped")
    assert n_rows(store) == 0
    assert store.run_dir(rec.run_id) == d and store.resolve("wall-hue") == rec.run_id
    assert store.get(rec.run_id[:6]).label == "wall-hue"
    with pytest.raises(ValueError, match="read-only"):
        store.delete(rec.run_id)
    with pytest.raises(ValueError, match="read-only"):
        store.request_cancel(rec.run_id)


def test_corrupt_pretrained_config_warns_and_skips_only_that_run(store, tmp_path):
    write_pretrained(tmp_path / "pretrained", "good", cfg(1))
    bad = write_pretrained(tmp_path / "pretrained", "bad", cfg(2))
    (bad / "config.json").write_text('{"train": {"steps": ')
    with pytest.warns(UserWarning, match=r"pretrained run bad: .*config.json is unreadable .* restore"):
        runs = store.list_runs()
    assert [r.label for r in runs] == ["good"]


def test_unreadable_database_says_what_to_do(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match=r"runs.sqlite is unreadable .*move it aside"):
        RunStore(home)


def test_unreadable_config_row_says_what_to_do(store):
    rec = store.submit(cfg(1))
    with sqlite3.connect(store.db_path) as con:
        con.execute("UPDATE runs SET config_json=? WHERE run_id=?", ('{"train": {"bogus": 1}}', rec.run_id))
    with pytest.raises(DataError, match="cannot read .*submit its settings again"):
        store.get(rec.run_id).config


# ----- logs, snapshots, deleting --------------------------------------------------------------------
def test_read_log_tolerates_torn_lines_and_resumes(store):
    rec = store.submit(cfg(1))
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 6)]
    torn = '{"step": 6, "lo' + json.dumps({"step": 4, "loss": 0.4})  # crash, then resume from 3
    text = "\n".join(lines + [torn, json.dumps({"step": 5, "loss": 0.5}), '{"step": 6, "l'])
    (rec.dir / "log.jsonl").write_text(text)
    log = store.read_log(rec.run_id)
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in log[3:]] == [0.4, 0.5]  # the resumed records won
    assert store.read_log(store.submit(cfg(2)).run_id) == []


def test_snapshots_round_trip(store):
    rec = store.submit(cfg(1))
    snaps = rec.dir / "snapshots"
    snaps.mkdir()
    rng = np.random.default_rng(0)
    for step in (0, 25):
        np.savez(snaps / f"step_{step:07d}.npz", embeddings=rng.normal(size=(6, 3)).astype(np.float32),
                 indices=np.arange(6, dtype=np.int64), factors=np.zeros((6, 2), np.int64),
                 step=np.int64(step))
    (snaps / ".step_0000050.npz.abc.tmp").write_bytes(b"partial")  # an unfinished atomic write
    assert store.snapshot_steps(rec.run_id) == [0, 25]
    snap = store.load_snapshot(rec.run_id, 25)
    assert snap["embeddings"].shape == (6, 3) and snap["embeddings"].dtype == np.float32
    assert int(snap["step"]) == 25 and snap["indices"].tolist() == list(range(6))
    with pytest.raises(ValueError, match="available steps: 0, 25"):
        store.load_snapshot(rec.run_id, 50)
    (snaps / "step_0000075.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="unreadable"):
        store.load_snapshot(rec.run_id, 75)


def test_delete_user_runs_but_not_running_ones(store):
    rec = store.submit(cfg(1))
    store.claim_next("w", os.getpid())
    with pytest.raises(ValueError, match="cancel it first"):
        store.delete(rec.run_id)
    store.finish(rec.run_id, "done", step=10)
    store.delete(rec.run_id)
    assert store.get(rec.run_id) is None and not rec.dir.exists()
    assert not [p for p in store.root.iterdir() if p.name.startswith(".deleted")]


def test_record_is_frozen(store):
    rec = store.submit(cfg(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "done"

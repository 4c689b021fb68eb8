"""Run store: a SQLite index of runs plus one directory per run (DESIGN.md, "Layout").

The same config is the same run (DESIGN.md, "Contracts"): the run id hashes the canonical
config JSON, so `submit` is INSERT OR IGNORE and submitting again is a cache hit, never a
second training of the model of the ACC paper section 3.

    queued -> running -> done | failed | cancelled
              running -> interrupted (its worker died or was stopped) -> running (resumed)

Workers `claim_next`, `heartbeat` and `finish` runs; anyone may `reap_dead` runs whose worker
is gone. A run directory root/<run_id>/ holds config.json (written at submit), and what
`acc_core.train.train` writes: checkpoint.pt, log.jsonl, snapshots/step_0000100.npz.
Pretrained runs ship read-only in pretrained/<name>/ (config.json + meta.json) and are listed
beside user runs without being in the database, so the shipped folder needs none.

SQLite in WAL mode lets readers (the app) go on while a worker writes; a connection is opened
per call, so none is ever shared across threads (Streamlit runs each script in a thread).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import time
import uuid
import warnings
from pathlib import Path

from acc_core import faults, rundir
from acc_core.config import RunConfig, validate
from acc_core.data.base import DataError
from acc_core.paths import acc_home
from acc_core.paths import pretrained_dir as paths_pretrained_dir
from acc_core.records import LIVE, STATUSES, RunRecord, pid_alive, read_pretrained  # noqa: F401

RETRYABLE = ("failed", "cancelled", "interrupted")
FINAL = ("done", "failed", "cancelled", "interrupted")  # what `finish` may set
MAX_CRASHES = 3  # a run whose worker died this often is failed, so it cannot kill workers forever
BUSY_TIMEOUT_S = 10.0
LIVE_PID_GRACE = 10.0  # see reap_dead

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    label TEXT,
    config_json TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    worker_id TEXT,
    worker_pid INTEGER,
    worker_host TEXT,     -- a pid only means something on the host that owns it
    heartbeat_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0
)"""


class RunStore:
    def __init__(self, root=None, *, pretrained_dir=None):
        self.root = Path(root).expanduser().resolve() if root is not None else acc_home()
        if pretrained_dir is None:  # ACC_PRETRAINED_DIR: another folder of shipped runs
            pretrained_dir = paths_pretrained_dir()
        self.pretrained_dir = Path(pretrained_dir)
        self.db_path = self.root / "runs.sqlite"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create the run store folder {self.root} ({e}); "
                            "set ACC_HOME to a writable folder") from None
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            db.execute(_SCHEMA)

    # ----- database -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _db(self, *, write: bool = False):
        """A fresh connection; `write` wraps the block in BEGIN IMMEDIATE ... COMMIT."""
        con = None
        try:
            con = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            # WAL + NORMAL: a commit does not wait for fsync; a power cut may lose the last
            # heartbeat, never the database's integrity.
            con.execute("PRAGMA synchronous=NORMAL")
            if write:
                con.execute("BEGIN IMMEDIATE")  # take the write lock now: read-then-write is atomic
            yield con
            if write:
                faults.write_point("index", "before")
                con.execute("COMMIT")
        except sqlite3.Error as e:
            raise self._db_error(e) from None
        finally:
            if con is not None:
                if con.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        con.rollback()
                con.close()

    def _db_error(self, e: sqlite3.Error) -> DataError:
        msg = str(e)
        if "locked" in msg or "busy" in msg:
            return DataError(f"the run store {self.db_path} stayed locked for {BUSY_TIMEOUT_S:g} s "
                             "by another process; try again")
        if "unable to open" in msg or "readonly" in msg:
            return DataError(f"cannot write the run store {self.db_path} ({msg}); "
                             "set ACC_HOME to a writable folder")
        if "disk is full" in msg or "database or disk is full" in msg:
            return DataError(f"the disk holding the run store {self.db_path} is full; free some "
                             "space (or set ACC_HOME to another disk) and try again")
        return DataError(f"the run store database {self.db_path} is unreadable ({msg}); move it "
                         f"aside and a new empty index is created (run folders in {self.root} are kept)")

    def _record(self, row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        d["cancel_requested"] = bool(d["cancel_requested"])
        return RunRecord(**d, source="user", dir=self.root / d["run_id"])

    def _row(self, db, run_id: str) -> RunRecord | None:
        row = db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else self._record(row)

    # ----- submitting and finding runs ----------------------------------------------------------
    def submit(self, config: RunConfig, *, label: str | None = None, retry: bool = False) -> RunRecord:
        """Queue `config`, or return its existing run (a cache hit). `retry` re-queues a run
        that failed, was cancelled or interrupted; it resumes from its last checkpoint."""
        validate(config)
        run_id = config.run_id
        pretrained = self._pretrained().get(run_id)
        if pretrained is not None:
            return pretrained
        if not (self.root / run_id / rundir.CONFIG).exists():
            rundir.write_config(self.root / run_id, config)
        now = time.time()
        with self._db(write=True) as db:
            db.execute(
                "INSERT OR IGNORE INTO runs (run_id, label, config_json, status, created_at,"
                " updated_at, steps) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (run_id, label or config.describe(), config.canonical_json(), now, now,
                 config.train.steps),
            )
            if retry:
                db.execute(
                    "UPDATE runs SET status='queued', reason=NULL, cancel_requested=0, crashes=0,"
                    " updated_at=? WHERE run_id=? AND status IN ('failed', 'cancelled', 'interrupted')",
                    (now, run_id))
            return self._row(db, run_id)

    def get(self, run_id: str) -> RunRecord | None:
        """The run with this id (or unique id prefix, or pretrained name); None if unknown."""
        found = self._matches(run_id)
        if len(found) > 1:
            raise ValueError(self._ambiguous(run_id, found))
        return found[0] if found else None

    def resolve(self, prefix: str) -> str:
        """The full run id for a unique prefix (or a pretrained run's name)."""
        found = self._matches(prefix)
        if len(found) == 1:
            return found[0].run_id
        if found:
            raise ValueError(self._ambiguous(prefix, found))
        known = ", ".join(r.run_id for r in self.list_runs()[:10]) or "none yet"
        raise ValueError(f"no run matches {prefix!r}; known runs: {known}")

    def _require(self, run_id: str) -> RunRecord:
        rec = self.get(run_id)
        if rec is None:
            self.resolve(run_id)  # raises the message listing the known runs
        return rec

    def _matches(self, prefix: str) -> list[RunRecord]:
        prefix = str(prefix).strip()
        if not prefix:
            raise ValueError("give a run id, or a unique prefix of one")
        with self._db() as db:
            exact = self._row(db, prefix)
            rows = [] if exact else db.execute(
                "SELECT * FROM runs WHERE substr(run_id, 1, ?)=? ORDER BY created_at DESC",
                (len(prefix), prefix)).fetchall()
        if exact:
            return [exact]
        pretrained = self._pretrained()
        for rec in pretrained.values():
            if prefix in (rec.run_id, rec.label, rec.dir.name):
                return [rec]
        found = {r["run_id"]: self._record(r) for r in rows}
        for rid, rec in pretrained.items():
            if rid.startswith(prefix):
                found.setdefault(rid, rec)
        return list(found.values())

    @staticmethod
    def _ambiguous(prefix: str, found: list[RunRecord]) -> str:
        names = ", ".join(f"{r.run_id} ({r.label})" for r in found[:10])
        return f"run id prefix {prefix!r} is ambiguous; give more characters of one of: {names}"

    def list_runs(self, *, status=None, include_pretrained: bool = True) -> list[RunRecord]:
        """User runs newest first, then pretrained runs by name. `status`: one or several."""
        wanted = None if status is None else ((status,) if isinstance(status, str) else tuple(status))
        bad = [s for s in wanted or () if s not in STATUSES]
        if bad:
            raise ValueError(f"unknown status {bad[0]!r}; valid: {', '.join(STATUSES)}")
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC").fetchall()
        runs = [self._record(r) for r in rows]
        if include_pretrained:
            ids = {r.run_id for r in runs}
            runs += [r for r in self._pretrained().values() if r.run_id not in ids]
        return [r for r in runs if wanted is None or r.status in wanted]

    def run_dir(self, run_id: str) -> Path:
        """The directory of a user run (root/<id>) or a pretrained run (pretrained/<name>)."""
        return self._require(run_id).dir

    # ----- pretrained runs -----------------------------------------------------------------------
    def _pretrained(self) -> dict[str, RunRecord]:
        out: dict[str, RunRecord] = {}
        if not self.pretrained_dir.is_dir():
            return out
        for d in sorted(p for p in self.pretrained_dir.iterdir() if (p / rundir.CONFIG).is_file()):
            try:
                stamp = tuple(f.stat().st_mtime_ns if f.exists() else 0
                              for f in (d / rundir.CONFIG, d / rundir.META))
                rec = read_pretrained(d, stamp)
            except DataError as e:  # one broken folder must not hide the others
                warnings.warn(str(e), stacklevel=3)
                continue
            out.setdefault(rec.run_id, rec)
        return out

    # ----- the worker's side ------------------------------------------------------------------
    def claim_next(self, worker_id: str, pid: int) -> RunRecord | None:
        """Atomically take the oldest interrupted run (resume first), else the oldest queued."""
        with self._db(write=True) as db:
            row = db.execute(
                "SELECT run_id FROM runs WHERE status IN ('interrupted', 'queued')"
                " ORDER BY status='interrupted' DESC, created_at, rowid LIMIT 1").fetchone()
            return None if row is None else self._take(db, row["run_id"], worker_id, pid)

    def claim(self, run_id: str, worker_id: str, pid: int) -> RunRecord | None:
        """Take this run if it is queued or interrupted (foreground training); else None."""
        with self._db(write=True) as db:
            rec = self._row(db, run_id)
            if rec is None or rec.status not in ("queued", "interrupted"):
                return None
            return self._take(db, run_id, worker_id, pid)

    def _take(self, db, run_id: str, worker_id: str, pid: int) -> RunRecord:
        now = time.time()
        db.execute(
            "UPDATE runs SET status='running', reason=NULL, worker_id=?, worker_pid=?,"
            " worker_host=?, heartbeat_at=?, updated_at=? WHERE run_id=?",
            (worker_id, pid, socket.gethostname(), now, now, run_id))
        return self._row(db, run_id)

    def heartbeat(self, run_id: str, worker_id: str, step: int, steps: int) -> bool:
        """Record progress; False when the run is no longer this worker's (reaped, finished)."""
        faults.write_point("index", "before")
        now = time.time()
        with self._db() as db:
            cur = db.execute(
                "UPDATE runs SET step=?, steps=?, heartbeat_at=?, updated_at=?"
                " WHERE run_id=? AND worker_id=? AND status='running'",
                (int(step), int(steps), now, now, run_id, worker_id))
            return cur.rowcount == 1

    def finish(self, run_id: str, status: str, *, step: int, reason: str | None = None,
               worker_id: str | None = None) -> bool:
        """Set a final status. With `worker_id`, only if that worker still holds the run."""
        if status not in FINAL:
            raise ValueError(f"cannot finish a run as {status!r}; valid: {', '.join(FINAL)}")
        faults.write_point("index", "before")
        sql = ("UPDATE runs SET status=?, step=?, reason=?, cancel_requested=0, updated_at=?"
               " WHERE run_id=?")
        args = [status, int(step), reason, time.time(), run_id]
        if worker_id is not None:
            sql += " AND worker_id=? AND status='running'"
            args.append(worker_id)
        with self._db() as db:
            return db.execute(sql, args).rowcount == 1

    def request_cancel(self, run_id: str) -> RunRecord:
        """A queued (or interrupted) run is cancelled at once; a running one stops at its next step."""
        rec = self._require(run_id)
        if rec.source == "pretrained":
            raise ValueError(f"run {rec.run_id} is a pretrained run; it is read-only")
        now = time.time()
        with self._db(write=True) as db:
            db.execute(
                "UPDATE runs SET status='cancelled', reason='cancelled before it finished training',"
                " updated_at=? WHERE run_id=? AND status IN ('queued', 'interrupted')", (now, rec.run_id))
            db.execute("UPDATE runs SET cancel_requested=1, updated_at=? WHERE run_id=?"
                       " AND status='running'", (now, rec.run_id))
            return self._row(db, rec.run_id)

    def cancel_requested(self, run_id: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT cancel_requested FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return bool(row and row[0])

    def reap_dead(self, stale_after: float = 30.0) -> list[str]:
        """Running runs whose worker is gone become interrupted (or cancelled, if a cancel was
        pending, or failed after MAX_CRASHES deaths). Returns their ids. One cheap SELECT when
        nothing is dead, so callers may run it on every page view.

        Dead: the worker's pid is gone from this host, or its heartbeat is older than
        `stale_after` (a worker on another host sharing the folder). A worker on this host whose
        pid is alive gets LIVE_PID_GRACE times longer: only pid reuse could make that pid lie,
        while a slow start (a foreground `acc train` loading data) or a suspended laptop is common.
        """
        now, host = time.time(), socket.gethostname()
        with self._db() as db:
            rows = db.execute("SELECT run_id, worker_id, worker_pid, worker_host, heartbeat_at"
                              " FROM runs WHERE status='running'").fetchall()

        def is_dead(r) -> bool:
            age = now - (r["heartbeat_at"] or 0.0)
            if r["worker_host"] != host:
                return age > stale_after
            return not pid_alive(r["worker_pid"]) or age > stale_after * LIVE_PID_GRACE

        dead = [r for r in rows if is_dead(r)]
        if not dead:
            return []
        reaped = []
        # where a resume starts: the checkpoint's step, not the last heartbeat's (read before
        # taking the write lock)
        ckpt_steps = {r["run_id"]: rundir.checkpoint_step(self.root / r["run_id"]) for r in dead}
        with self._db(write=True) as db:
            for r in dead:
                rec = self._row(db, r["run_id"])
                if (rec is None or rec.status != "running" or rec.worker_id != r["worker_id"]
                        or rec.heartbeat_at != r["heartbeat_at"]):
                    continue  # it beat, finished or changed hands since we looked
                crashes = rec.crashes + 1
                step = ckpt_steps.get(rec.run_id)
                step = rec.step if step is None else step
                if rec.cancel_requested:
                    status, reason = "cancelled", f"cancelled; its worker stopped at step {rec.step}"
                elif crashes >= MAX_CRASHES:
                    status, reason = "failed", (f"worker died {crashes} times (last at step "
                                                f"{rec.step}); see worker.log, then retry the run")
                else:
                    status, reason = "interrupted", f"worker died at step {rec.step}"
                    if ckpt_steps.get(rec.run_id) is not None:
                        reason += f"; it resumes from its checkpoint at step {step}"
                db.execute("UPDATE runs SET status=?, reason=?, crashes=?, cancel_requested=0,"
                           " step=?, updated_at=? WHERE run_id=?",
                           (status, reason, crashes, step, now, rec.run_id))
                reaped.append(rec.run_id)
        return reaped

    # ----- what training wrote (read through acc_core.rundir, the layout's one owner) -----------
    def read_log(self, run_id: str) -> list[dict]:
        return rundir.read_log(self.run_dir(run_id))

    def snapshot_steps(self, run_id: str) -> list[int]:
        return rundir.snapshot_steps(self.run_dir(run_id))

    def load_snapshot(self, run_id: str, step: int) -> dict:
        """{embeddings (P, E) float32, indices (P,) int64, factors (P, K) int64, step} at `step`."""
        return rundir.load_snapshot(self.run_dir(run_id), step)

    def delete(self, run_id: str) -> None:
        """Remove a user run (index row and folder); not while it is running."""
        rec = self._require(run_id)
        if rec.source == "pretrained":
            raise ValueError(f"run {rec.run_id} is a pretrained run; it is read-only")
        with self._db(write=True) as db:
            cur = db.execute("DELETE FROM runs WHERE run_id=? AND status != 'running'", (rec.run_id,))
            if cur.rowcount == 0:
                raise ValueError(f"run {rec.run_id} is running; cancel it first, then delete it")
        if rec.dir.exists():  # rename first, so a half-deleted folder never looks like a run
            trash = self.root / f".deleted-{rec.run_id}-{uuid.uuid4().hex[:6]}"
            os.replace(rec.dir, trash)
            shutil.rmtree(trash, ignore_errors=True)

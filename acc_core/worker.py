"""Background worker: trains the run store's queued runs, one at a time (DESIGN.md, "Layout").

The app never trains in its own process (DESIGN.md, data flow): it queues a run and calls
`ensure_worker`, which starts `python -m acc_core.worker --idle-exit 600` when no worker holds
the device's lock. A worker

- holds an exclusive flock on root/worker-<device>.lock for its life: one worker per device.
  The OS drops the lock when the process dies, however it dies;
- reaps runs whose worker died (they become `interrupted`) and resumes those first;
- trains each run through `acc_core.runner.train_claimed`, the path `acc train` and `acc
  pretrained build` share: a side thread writes the heartbeat and progress about once a
  second, so a long snapshot never looks like a death, and reads cancel requests, which stop
  training at the next step;
- on SIGTERM or SIGINT lets the current step finish, marks the run interrupted and exits;
- when no run waits, computes the whole-dataset views asked for (`acc_core.largeview`: a
  request file per run in root/large-requests/, outside the runs table).

Test hook: the environment variable ACC_TRAIN_FN="module:function" replaces
`acc_core.train.train` (same signature), so tests run a real worker process with a fast fake
training loop.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from acc_core import largeview
from acc_core.paths import REPO_ROOT, acc_home
from acc_core.store import RunStore, pid_alive

log = logging.getLogger("acc_core.worker")
EXIT_BUSY = 3  # exit status of a worker that found another one holding the device's lock
LOCK_WAIT_S = 0.5  # a lock probe (worker_alive) holds the lock for microseconds: wait it out
REAP_EVERY_S = 10.0


# ----- the device lock -------------------------------------------------------------------------
def lock_path(root, device: str | None = None) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", device or "auto")
    return Path(root) / f"worker-{name}.lock"


def _try_lock(path: Path, wait: float = 0.0) -> int | None:
    """An fd holding an exclusive flock on `path`, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def worker_alive(root=None, *, device: str | None = None) -> bool:
    """Whether a worker holds the lock for `device` under `root`."""
    path = lock_path(Path(root) if root is not None else acc_home(), device)
    if not path.exists():
        return False
    fd = _try_lock(path)
    if fd is None:
        return True
    os.close(fd)  # closing releases the probe's lock
    return False


def workers(root=None) -> list[dict]:
    """The live workers under `root`: {pid, host, device, worker_id, started_at} each."""
    root = Path(root) if root is not None else acc_home()
    out = []
    for path in sorted(root.glob("worker-*.lock")):
        fd = _try_lock(path)
        if fd is not None:
            os.close(fd)
            continue
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # the holder has not written its details yet
            out.append({"lock": path.name})
    return out


# ----- the loop ------------------------------------------------------------------------------------
class _Stop:
    """Set by SIGTERM/SIGINT; checked between steps. A second SIGINT interrupts at once."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.info("received %s: stopping after the current step", signal.Signals(signum).name)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.requested and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))


def run_worker(root=None, *, device: str | None = None, once: bool = False, poll: float = 1.0,
               idle_exit: float | None = None, train_fn=None, exit_with: int | None = None,
               precompute: bool = False) -> int:
    """Train queued runs until stopped. Returns an exit status: 0, or EXIT_BUSY when another
    worker already holds this device. `exit_with`: a process (the app's server) whose end
    makes the worker exit as soon as the queue is empty; `once`: exit when the queue is empty; `idle_exit`: exit
    after that many idle seconds; `train_fn`: replaces acc_core.train.train (tests)."""
    _default_logging()
    store = RunStore(root)
    path = lock_path(store.root, device)
    fd = _try_lock(path, wait=LOCK_WAIT_S)
    if fd is None:
        log.warning("another worker already trains on device %r under %s (%s); this one exits",
                    device or "auto", store.root, _holder(path))
        return EXIT_BUSY
    worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    info = {"worker_id": worker_id, "pid": os.getpid(), "host": socket.gethostname(),
            "device": device or "auto", "started_at": time.time()}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    stop = _Stop()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    log.info("worker %s started on device %s under %s", worker_id, device or "auto", store.root)
    if precompute:
        from acc_core.runner import warm_up_umap

        warm_up_umap()
    try:
        idle_since, last_reap = time.monotonic(), float("-inf")
        while not stop.requested:
            if time.monotonic() - last_reap >= REAP_EVERY_S:
                for run_id in store.reap_dead():
                    log.info("run %s lost its worker; marked interrupted", run_id)
                last_reap = time.monotonic()
            rec = store.claim_next(worker_id, os.getpid())
            if rec is not None:
                _train_one(store, rec, worker_id, device, train_fn, stop, precompute)
                idle_since = time.monotonic()
                continue
            if largeview.serve_next(store.root, should_stop=lambda: stop.requested,
                                    device=device):  # whole-dataset views, when none trains
                idle_since = time.monotonic()
                continue
            parent_gone = exit_with is not None and not pid_alive(exit_with)
            if once or parent_gone or (idle_exit is not None
                                       and time.monotonic() - idle_since >= idle_exit):
                # Release the lock, then look once more: a run queued by someone who saw this
                # worker alive (and so started none) must not wait for the next ensure_worker.
                os.close(fd)
                fd = None
                if not (store.list_runs(status=("queued", "interrupted"), include_pretrained=False)
                        or largeview.pending(store.root)):
                    break
                fd = _try_lock(path)
                if fd is None:
                    break  # a new worker took over
                continue
            stop.sleep(poll)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        if fd is not None:
            os.close(fd)
    log.info("worker %s exits", worker_id)
    return 0


def _train_one(store: RunStore, rec, worker_id: str, device, train_fn, stop: _Stop,
               precompute: bool = False) -> None:
    from acc_core.runner import train_claimed

    log.info("run %s (%s): training from step %d of %d", rec.run_id, rec.label, rec.step, rec.steps)
    try:
        train = train_fn or _resolve_train()
    except Exception as e:  # a broken install fails the run and says why; the worker goes on
        store.finish(rec.run_id, "failed", step=rec.step, reason=f"{type(e).__name__}: {e}",
                     worker_id=worker_id)
        return
    out = train_claimed(store, rec, worker_id, device=device, train_fn=train,
                        stop_requested=lambda: stop.requested, precompute=precompute)
    log.info("run %s: %s at step %d%s", rec.run_id, out["status"], out["step"],
             f" ({out['reason']})" if out["reason"] else "")


def _resolve_train():
    spec = os.environ.get("ACC_TRAIN_FN", "acc_core.train:train")
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"ACC_TRAIN_FN must look like 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']}"
    except (OSError, ValueError, KeyError):
        return "pid unknown"


def _default_logging() -> None:
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s worker[{os.getpid()}] %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


# ----- starting one from the app ---------------------------------------------------------------
_SPAWNED: dict[tuple[str, str], subprocess.Popen] = {}
_SPAWN_LOCK = threading.Lock()


def ensure_worker(root=None, *, device: str | None = None, idle_exit: float = 600.0,
                  exit_with_me: bool = True) -> bool:
    """Start a detached worker unless one holds the device's lock; True if one was started.

    Two callers at once may both start one; the lock lets exactly one survive (the other exits
    at once). Within one process (Streamlit tabs are threads), a mutex avoids even that."""
    root = Path(root).expanduser().resolve() if root is not None else acc_home()
    key = (str(root), device or "auto")
    with _SPAWN_LOCK:
        proc = _SPAWNED.get(key)
        if proc is not None and proc.poll() is None:
            return False  # ours is starting or running (poll also reaps it once it exits)
        if worker_alive(root, device=device):
            return False
        root.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "acc_core.worker", "--idle-exit", f"{idle_exit:g}"]
        # The app's worker ends with the app: once the queue is empty and the server is gone.
        cmd += ["--exit-with", str(os.getpid())] if exit_with_me else []
        cmd += ["--device", device] if device else []
        paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = dict(os.environ, ACC_HOME=str(root), PYTHONPATH=os.pathsep.join(paths))
        with open(root / "worker.log", "ab") as out:
            _SPAWNED[key] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True)
        return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m acc_core.worker", description=__doc__.split("\n")[0])
    p.add_argument("--root", help="run store folder (default: $ACC_HOME, else ~/.local/share/acc-explorer/runs)")
    p.add_argument("--device", help="torch device, e.g. cuda:0 or cpu (default: GPU if any)")
    p.add_argument("--once", action="store_true", help="exit when the queue is empty")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between queue checks")
    p.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle seconds")
    p.add_argument("--no-precompute", action="store_true",
                   help="do not compute the final UMAP of a finished run (pages then do)")
    p.add_argument("--exit-with", type=int, default=None,
                   help="a process id: exit once the queue is empty and that process is gone")
    a = p.parse_args(argv)
    return run_worker(a.root, device=a.device, once=a.once, poll=a.poll, idle_exit=a.idle_exit,
                      exit_with=a.exit_with, precompute=not a.no_precompute)


if __name__ == "__main__":
    sys.exit(main())

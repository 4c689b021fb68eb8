"""Fault injection at the write moments of a run, for the crash-consistency tests.

Every write a run depends on passes `write_point(kind, phase)`: the atomic file writes of
`acc_core.paths` (kinds from the file name: checkpoint, snapshot, metrics, eval, config,
file) before and after their rename, the training log after each appended record ("log"),
and the run index's write transactions before their commit ("index").

With `ACC_FAULT_AT=KIND:N[:PHASE]` in the environment, the N-th write point of that kind and
phase (default phase "before") kills the process with SIGKILL, as a power cut or the OOM
killer would. Unset (always, outside the tests), a write point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

_counts: dict[tuple[str, str], int] = {}


def kind_of(path: str | os.PathLike) -> str:
    """The write kind of a run-folder file, from its name and folder."""
    p = Path(path)
    if p.name == "checkpoint.pt":
        return "checkpoint"
    if p.parent.name == "snapshots":
        return "snapshot"
    if p.parent.name == "eval":
        return "eval"
    if p.name == "metrics.json":
        return "metrics"
    if p.name == "config.json":
        return "config"
    if p.name == "log.jsonl":
        return "log"
    return "file"


def write_point(kind: str, phase: str = "before") -> None:
    spec = os.environ.get("ACC_FAULT_AT")
    if not spec:
        return
    parts = spec.split(":")
    want_kind, want_n = parts[0], int(parts[1])
    want_phase = parts[2] if len(parts) > 2 else "before"
    if (kind, phase) != (want_kind, want_phase):
        return
    n = _counts[(kind, phase)] = _counts.get((kind, phase), 0) + 1
    if n == want_n:
        os.kill(os.getpid(), signal.SIGKILL)

"""A run as the store lists it (`RunRecord`), for user runs (a row of the SQLite index) and
shipped runs (a folder of pretrained/, read through `acc_core.rundir`), and whether a worker's
process is alive."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from acc_core import rundir
from acc_core.config import RunConfig
from acc_core.data.base import DataError

STATUSES = ("queued", "running", "done", "failed", "interrupted", "cancelled")
LIVE = ("queued", "running", "interrupted")  # a worker will still move these forward


@dataclass(frozen=True)
class RunRecord:
    """One run as the store sees it; `config` is parsed from `config_json` on first use."""

    run_id: str
    label: str
    config_json: str
    status: str
    created_at: float
    updated_at: float
    step: int
    steps: int
    reason: str | None
    worker_id: str | None
    worker_pid: int | None
    worker_host: str | None
    heartbeat_at: float | None
    cancel_requested: bool
    crashes: int
    source: str  # "user" or "pretrained"
    dir: Path
    description: str = ""

    @functools.cached_property
    def config(self) -> RunConfig:
        try:
            return RunConfig.from_json(self.config_json)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise DataError(
                f"run {self.run_id} has a config this version cannot read ({type(e).__name__}: "
                f"{e}); delete the run and submit its settings again"
            ) from None

    @property
    def is_live(self) -> bool:
        return self.status in LIVE

    @property
    def progress(self) -> float:
        """Fraction of the training steps done, in [0, 1]."""
        return min(1.0, self.step / self.steps) if self.steps else 0.0


def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` exists on this host and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a killed child nobody waited for is a zombie: dead, though kill(pid, 0) succeeds
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


@functools.lru_cache(maxsize=256)
def read_pretrained(d: Path, stamp: tuple) -> RunRecord:
    """A pretrained run folder as a record (cached until its files change: `stamp`)."""
    try:
        config = rundir.read_config(d)
    except DataError as e:
        raise DataError(f"pretrained run {d.name}: {e}") from None
    meta = rundir.read_meta(d)
    if meta.get("run_id") not in (None, config.run_id):
        raise DataError(f"pretrained run {d.name}: its config.json is not the one it was trained "
                        f"with (run id {config.run_id}, shipped as {meta['run_id']}); restore the "
                        f"folder {d} from the repository")
    status = meta.get("status", "done")
    made = float(meta.get("created_at") or (d / rundir.META).stat().st_mtime)
    step = int(meta.get("step", config.train.steps))
    return RunRecord(
        run_id=config.run_id, label=str(meta.get("name", d.name)), config_json=config.canonical_json(),
        status=status if status in STATUSES else "done", created_at=made, updated_at=made,
        step=step, steps=config.train.steps, reason=None, worker_id=None, worker_pid=None,
        worker_host=None, heartbeat_at=None, cancel_requested=False, crashes=0,
        source="pretrained", dir=d, description=str(meta.get("description", "")),
    )

"""Estimated wall time of a run on this machine, from a few timed training steps.

The Train page shows it before a run is launched. It times real steps of the run's method
(its batcher, networks, loss and optimiser, as `acc_core.train` runs them), so it holds for
every method; and it is measured again once it is older than `MAX_AGE_S`, because the
machine's load changes (a figure taken while another run trained would otherwise stay).
"""

from __future__ import annotations

import dataclasses
import threading
import time

from acc_core.config import RunConfig

MAX_AGE_S = 60.0
_CACHE: dict[str, tuple[float, float]] = {}  # per-step key -> (measured at, seconds per step)
_LOCK = threading.Lock()


def _step_key(config: RunConfig) -> str:
    """What a step's cost depends on: everything but the schedule and the seed."""
    t = dataclasses.replace(config.train, steps=1, seed=0, checkpoint_every=1, snapshot_every=1,
                            probe_size=1)
    return config.replace(train=t).canonical_json()


def seconds_per_step(config: RunConfig, *, now: float | None = None) -> float:
    from acc_core.train import timed_steps

    now = time.monotonic() if now is None else now
    key = _step_key(config)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None and now - hit[0] < MAX_AGE_S:
        return hit[1]
    times = timed_steps(config, steps=(1, 2, 3))
    per_step = min(times[1:])  # the first pass pays one-off costs
    with _LOCK:
        _CACHE[key] = (now, per_step)
    return per_step


def estimate_seconds(config: RunConfig) -> float:
    """Estimated wall time of a run on this machine: its steps, plus the snapshots (a forward
    pass of the probe images, about a third of a training step's cost per image)."""
    t = config.train
    per_step = seconds_per_step(config)
    n_snap = t.steps // t.snapshot_every + 2
    batch_images = 2 * t.set_size * t.pairs_per_step
    snap = n_snap * per_step * t.probe_size / max(batch_images, 1) / 3
    return float(t.steps * per_step * 1.05 + snap)  # 5%: logging, checkpoints

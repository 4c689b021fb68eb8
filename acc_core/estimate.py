"""Estimated wall time of a run on this machine, from a few timed passes of its network.

The Train page shows it before a run is launched. The estimate is re-measured when it is
older than a minute (the machine's load changes), and it times the network as training runs
it (channels-last, first pass discarded).
"""

from __future__ import annotations

import time
from functools import lru_cache

from acc_core.config import RunConfig


@lru_cache(maxsize=32)
def _seconds_per_step(encoder: str, dim: int, channels: int, size: int, batch: int) -> float:
    """Time a few forward+backward passes of the run's network on this machine."""
    import torch

    from acc_core.models import build_encoder

    # as training runs it: channels-last (measured 1.4-2.5x faster on CPU), first pass discarded
    model = build_encoder(encoder, dim, in_channels=channels, image_size=size)
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        model(x).pow(2).mean().backward()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def estimate_seconds(config: RunConfig) -> float:
    """Estimated wall time of a run on this machine's CPU (GPU runs are much faster)."""
    from acc_core import data as data_sources

    m = data_sources.manifest(config.data.source)
    h, _, c = m["image_shape"]
    size = config.data.image_size or h
    t = config.train
    batch = 2 * t.set_size * t.pairs_per_step * (2 if t.double_augmentation or t.method == "hue_infonce" else 1)
    per_step = _seconds_per_step(config.model.encoder, config.model.embedding_dim, c, size, batch)
    n_snap = t.steps // t.snapshot_every + 2
    snap = n_snap * per_step * t.probe_size / batch / 3  # forward only, about a third
    return float(t.steps * per_step * 1.15 + snap)  # 15%: data, loss, optimiser



"""Procedural Shapes3D rendering throughput (acc_core.data.shapes3d_render).

Training draws random batches of images every step (the ACC paper section 4.1), so rendering
must never be the bottleneck: target >= 5,000 images/s at 64x64 on 2 CPU threads. The
renderer casts rays once per size into cached layers (timed separately as `layer_build_s`)
and composites batches from them. The baseline, measured in the same run, is the same
renderer called one image at a time, as a per-image data loader would.

    python benchmarks/bench_render.py        # prints JSON
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np
import torch

from acc_core.data.shapes3d_procedural import load_procedural
from acc_core.data.shapes3d_render import _layers, render

BATCH = 8192  # random indices per timed call
SINGLES = 300  # images rendered one at a time for the baseline


def images_per_second(fn, n_images: int, min_time: float = 1.0) -> float:
    """Repeat `fn()` for at least `min_time` seconds; best of 3 rounds (noisy shared CPU)."""
    best = 0.0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            fn()
            calls += 1
        best = max(best, calls * n_images / elapsed)
    return best


def bench_size(size: int, rng: np.random.Generator) -> dict:
    start = time.perf_counter()
    _layers(size)
    build = time.perf_counter() - start
    ds = load_procedural(size=size)
    idx = rng.integers(0, len(ds), BATCH)
    factors = torch.from_numpy(ds.factors(idx))
    batched = images_per_second(lambda: render(factors, size), BATCH)
    api = images_per_second(lambda: ds.images(idx), BATCH)
    singles = factors[:SINGLES]
    one_at_a_time = images_per_second(lambda: [render(f[None], size) for f in singles], SINGLES)
    return {
        "layer_build_s": round(build, 2),
        "render_images_per_s": round(batched),
        "dataset_images_per_s": round(api),
        "baseline_one_at_a_time_images_per_s": round(one_at_a_time),
        "speedup_vs_baseline": round(batched / one_at_a_time, 1),
    }


def main() -> dict:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    results = {
        "benchmark": "shapes3d-procedural rendering",
        "torch_threads": torch.get_num_threads(),
        "batch": BATCH,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for size in (64, 32):
        results[f"{size}x{size}"] = bench_size(size, rng)
    results["target_met"] = results["64x64"]["render_images_per_s"] >= 5000
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

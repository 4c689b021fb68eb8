"""Pose-procedural rendering throughput (acc_core.data.pose_render).

Each image is ray cast against its object's parametric parts (no cached layers: the
geometry changes with every viewpoint and instance), so the renderer works on batches of
images at once. The baseline, measured in the same run, is the same renderer called one
image at a time, as a per-image data loader would. The dataset keeps every drawn image in
memory, so a training run renders each of its 8,640 images at most once; the JSON also
gives the time to draw them all. The load average is recorded because the CPU is shared.

    python benchmarks/bench_pose_render.py [--size 64]     # prints JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from acc_core.data.pose_procedural import ProceduralPose
from acc_core.data.pose_render import _banks, render

BATCH = 256  # random images per timed call
SINGLES = 32  # images rendered one at a time for the baseline


def images_per_second(fn, n_images: int, rounds: int = 3) -> float:
    """Best of `rounds` timings of `fn()` (noisy shared CPU)."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = max(best, n_images / (time.perf_counter() - start))
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="pose-procedural rendering throughput")
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args(argv)
    size = args.size
    load_before = os.getloadavg()
    start = time.perf_counter()
    _banks(size)
    banks_s = time.perf_counter() - start
    ds = ProceduralPose(size=size)
    rng = np.random.default_rng(0)
    factors = ds.factors(rng.integers(0, len(ds), BATCH))
    batched = images_per_second(lambda: render(factors, size), BATCH)
    syn = factors[factors[:, 4] == 0]
    real = factors[factors[:, 4] == 1]
    synthetic = images_per_second(lambda: render(syn, size), len(syn))
    real_rate = images_per_second(lambda: render(real, size), len(real))
    singles = factors[:SINGLES]
    one_at_a_time = images_per_second(lambda: [render(f[None], size) for f in singles], SINGLES)
    result = {
        "image_size": size,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "background_bank_s": round(banks_s, 2),
        "batched_images_per_s": round(batched, 1),
        "batched_synthetic_images_per_s": round(synthetic, 1),
        "batched_real_images_per_s": round(real_rate, 1),
        "baseline_one_at_a_time_images_per_s": round(one_at_a_time, 1),
        "speedup_vs_baseline": round(batched / one_at_a_time, 1),
        "whole_dataset_images": len(ds),
        "whole_dataset_estimated_s": round(len(ds) / batched, 1),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

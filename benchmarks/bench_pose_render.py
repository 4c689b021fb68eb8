"""Pose-procedural rendering throughput (acc_core.data.pose_render).

Each image is ray cast against its object's parametric parts (no cached layers: the
geometry changes with every viewpoint and instance), so the renderer works on batches of
images at once. The baseline, measured in the same run, is the same renderer called one
image at a time, as a per-image data loader would. The dataset keeps every drawn image in
memory, so a training run renders each of its 8,640 images at most once; the JSON also
gives the time to draw them all. The load average is recorded because the CPU is shared.

The renderer runs on one torch thread (`pose_render.SINGLE_THREAD`). `--busy` also measures
why: beside a busy neighbour process (two threads of matrix products, as a training worker
keeps the cores busy), the same batch rendered on one thread and on torch's default threads.

    python benchmarks/bench_pose_render.py [--size 64] [--busy]     # prints JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from acc_core.data import pose_render
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


def _busy_neighbour(seconds: float):
    """A separate process keeping two threads busy with matrix products for `seconds`."""
    import subprocess
    import sys

    code = ("import time, torch; torch.set_num_threads(2); a = torch.randn(512, 512); "
            f"end = time.time() + {seconds}\nwhile time.time() < end: a @ a")
    return subprocess.Popen([sys.executable, "-c", code])


def busy_comparison(factors, size: int) -> dict:
    """Images/s of one batch beside a busy neighbour: one render thread vs torch's default."""
    neighbour = _busy_neighbour(120)
    try:
        time.sleep(2)  # let it start
        out = {"neighbour": "2 threads of 512x512 matrix products",
               "threads_default": torch.get_num_threads()}
        for key, single in (("one_thread_images_per_s", True), ("default_threads_images_per_s", False)):
            pose_render.SINGLE_THREAD = single
            out[key] = round(images_per_second(lambda: render(factors, size), len(factors), rounds=1), 1)
        out["one_thread_speedup"] = round(out["one_thread_images_per_s"] / out["default_threads_images_per_s"], 1)
        return out
    finally:
        pose_render.SINGLE_THREAD = True
        neighbour.kill()
        neighbour.wait()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="pose-procedural rendering throughput")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--busy", action="store_true",
                    help="also render beside a busy process, on one thread and on the default threads")
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
        "render_threads": 1 if pose_render.SINGLE_THREAD else torch.get_num_threads(),
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
    if args.busy:
        result["beside_a_busy_process"] = busy_comparison(factors[:64], size)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

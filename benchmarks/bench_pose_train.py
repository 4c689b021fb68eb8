"""Time of the acc_pose quick preset (64x64) on this machine: rendering and training steps.

A training run draws nearly every training image of `pose-procedural` once (the dataset keeps
them in memory), then trains. This prints the time to draw the images the run uses, the
seconds per training step once they are drawn (a few real steps: batch, two augmented views,
loss, backward, Adam), the load average around the measurement (the CPU is shared), and the
resulting estimate of the whole quick run; `quiet_estimate_s` scales the measured time by
cores / max(cores, load average), i.e. assumes the other processes took their share.

    python benchmarks/bench_pose_train.py [--steps 5] [--preset quick]     # prints JSON
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main(argv=None) -> dict:
    from acc_core import data
    from acc_core.config import preset, training_precision
    from acc_core.data.pose_procedural import DICTIONARY_INSTANCES
    from acc_core.train import timed_steps

    ap = argparse.ArgumentParser(description="acc_pose preset timing")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--precision", choices=("default", "float32", "bfloat16"),
                    help="train.precision to time (default: the preset's)")
    args = ap.parse_args(argv)
    cfg = preset(args.preset, "pose-procedural", method="acc_pose")
    if args.precision:
        import dataclasses

        cfg = cfg.replace(train=dataclasses.replace(cfg.train, precision=args.precision))
    load_before = os.getloadavg()
    ds = data.load_for(cfg.data)
    used = ds.select(instances=DICTIONARY_INSTANCES)  # what training draws
    start = time.perf_counter()
    ds.images(used)
    render_s = time.perf_counter() - start
    step_s = timed_steps(cfg, steps=tuple(range(1, args.steps + 2)))[1:]  # the first warms up
    load_after = os.getloadavg()
    per_step = float(np.median(step_s))
    total = render_s + per_step * cfg.train.steps
    cores = os.cpu_count() or 1
    load = max((load_before[0] + load_after[0]) / 2, 1e-9)
    result = {
        "preset": args.preset, "precision": training_precision(cfg.train, "cpu"),
        "image_size": cfg.data.image_size, "steps": cfg.train.steps,
        "pairs_per_step": cfg.train.pairs_per_step, "set_size": cfg.train.set_size,
        "cores": cores, "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "render_training_images_s": round(render_s, 1), "training_images": int(len(used)),
        "seconds_per_step": [round(s, 3) for s in step_s], "median_seconds_per_step": round(per_step, 3),
        "steps_per_s": round(1 / per_step, 3),
        "estimated_run_s_at_this_load": round(total, 0),
        "quiet_estimate_s": round(total * cores / max(cores, load), 0),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

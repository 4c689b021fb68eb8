"""A sweep's wall time: N tiny runs one at a time (the local engine) against the same runs on
an embedded Ray, each in a fresh store, in one run of this script.

Prints JSON:
- `sequential_s`: the local engine, one run after another, one torch thread each (the
  threads a trial gets, so both give the same weights);
- `sequential_all_threads_s`: the local engine with every CPU's thread on each run in turn
  (other weights, bit for bit: what a user without Ray would otherwise do);
- `ray_start_s`: starting the embedded Ray (loopback, no dashboard); `ray_sweep_s`: the runs on
  it, `slots` at a time; `ray_total_s`: start, runs and shutdown;
- `ray_overhead_per_trial_s`: (ray_sweep_s x slots - sequential_s) / N, the CPU-slot seconds a
  trial costs beyond its training (worker start, imports, data, scheduling);
- `speedup`: sequential_s / ray_total_s;
- `loadavg_before`, `loadavg_after`: os.getloadavg(), since other work on the machine moves
  every figure.

    python benchmarks/bench_sweep.py [--runs 8] [--steps 100] [--cpus N] [--cpus-per-trial 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acc_core import sweep_ray, sweep_run
from acc_core.config import preset
from acc_core.store import RunStore


def tiny_runs(n: int, steps: int, probe_size: int):
    """Procedural Shapes3D at 32 px, 8-D codes, sets of 8: seconds per run on a CPU."""
    cfg = preset("quick", "shapes3d-procedural")
    every = max(1, steps // 4)
    return [cfg.replace(model=dataclasses.replace(cfg.model, embedding_dim=8),
                        train=dataclasses.replace(cfg.train, steps=steps, set_size=8, seed=s,
                                                  checkpoint_every=every, snapshot_every=every,
                                                  probe_size=probe_size))
            for s in range(n)]


def timed_sweep(configs, **kw) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as root:
        t0 = time.perf_counter()
        out = sweep_run.run_sweep(configs, store=RunStore(Path(root) / "runs"), **kw)
        wall = time.perf_counter() - t0
    if out["failed"] or out["done"] != len(configs):
        raise SystemExit(f"bench_sweep: runs failed: {out['failed']}")
    return wall, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--probe-size", type=int, default=300)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    p.add_argument("--cpus-per-trial", type=int, default=1)
    args = p.parse_args(argv)
    if not sweep_ray.available():
        raise SystemExit(sweep_ray.MISSING)
    configs = tiny_runs(args.runs, args.steps, args.probe_size)
    load_before = os.getloadavg()
    seq, _ = timed_sweep(configs, engine="local", cpus_per_trial=args.cpus_per_trial)
    seq_all, _ = timed_sweep(configs, engine="local", cpus_per_trial=args.cpus)
    t0 = time.perf_counter()
    with sweep_ray.connect(cpus=args.cpus):
        start = time.perf_counter() - t0
        ray_sweep, _ = timed_sweep(configs, engine="ray", cpus=args.cpus,
                                   cpus_per_trial=args.cpus_per_trial)
    total = time.perf_counter() - t0
    slots = max(1, min(args.cpus // args.cpus_per_trial, args.runs))
    print(json.dumps({
        "runs": args.runs, "steps": args.steps, "probe_size": args.probe_size,
        "cpus": args.cpus, "cpus_per_trial": args.cpus_per_trial, "slots": slots,
        "sequential_s": round(seq, 2), "sequential_all_threads_s": round(seq_all, 2),
        "ray_start_s": round(start, 2), "ray_sweep_s": round(ray_sweep, 2),
        "ray_total_s": round(total, 2),
        "ray_overhead_per_trial_s": round((ray_sweep * slots - seq) / args.runs, 3),
        "speedup": round(seq / total, 2),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

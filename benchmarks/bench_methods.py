"""Every registered method on one machine, in one run: training throughput, the quick
preset's wall time, and achieved GFLOP/s against a matmul measured in the same run.

Prints JSON. For each method of `acc_core.methods`:
- `steps_per_s`: steps/s of `acc_core.train.train`'s step (batcher, image loading, loss,
  backward, optimiser) on its quick Shapes3D preset, in the precision `train` uses for it
  (`precision`: bfloat16 autocast where the preset asks for it and the hardware has it),
  timed over `--steps` steps after warm-up;
- `gflop_per_step` (forward + backward as counted by torch.utils.flop_counter on one step) and
  `achieved_gflops` = gflop_per_step x steps_per_s, beside `matmul_gflops` (a 2048^2 fp32
  matmul in the same run; `matmul_gflops_bf16` the same in bf16 when a method trains in bf16):
  the fraction, against the matmul of the method's own precision, says how close each method
  runs to the machine;
- `quick_preset_s`: the wall time of the whole quick preset through the same `train` as the
  CLI and the worker (snapshots and the method's own evaluation included), unless
  `--skip-full`; `quick_preset_s_estimate` = steps / steps_per_s otherwise.

    python benchmarks/bench_methods.py [--methods acc,lord] [--steps 10] [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import matmul_gflops  # noqa: E402

from acc_core import data as data_sources  # noqa: E402
from acc_core import methods  # noqa: E402
from acc_core.config import preset, training_precision  # noqa: E402
from acc_core.train import make_batch, pick_device, step_autocast, train  # noqa: E402


def one_step(model, optimizer, method, cfg, dataset, draw, step, dev):
    rng = np.random.default_rng([cfg.train.seed, step])
    gen = torch.Generator().manual_seed(step)
    batch = make_batch(draw, dataset, cfg, rng, step, dev)
    with step_autocast(training_precision(cfg.train, dev), dev):  # as `train` computes it
        loss, _ = method.loss(model, batch, cfg, gen, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def measure(name: str, steps: int, full: bool, dev) -> dict:
    cfg = preset("quick", "shapes3d-procedural", method=name)
    method = cfg.method
    dataset = data_sources.load_for(cfg.data)
    draw = method.batcher(cfg, dataset)
    torch.manual_seed(0)
    model = method.build(cfg, dataset).to(dev, memory_format=torch.channels_last)
    optimizer = method.optimizer(model, cfg)
    with FlopCounterMode(display=False) as counter:
        one_step(model, optimizer, method, cfg, dataset, draw, 1, dev)
    flops = counter.get_total_flops()
    for s in range(2, 4):  # warm-up
        one_step(model, optimizer, method, cfg, dataset, draw, s, dev)
    # Steps late in training too (LORD's second stage differs): sample across the schedule.
    at = np.linspace(4, cfg.train.steps, steps).astype(int)
    t0 = time.perf_counter()
    for s in at:
        one_step(model, optimizer, method, cfg, dataset, draw, int(s), dev)
    rate = steps / (time.perf_counter() - t0)
    out = {"method": name, "title": method.title, "steps": cfg.train.steps,
           "image_size": cfg.data.image_size, "precision": training_precision(cfg.train, dev),
           "steps_per_s": round(rate, 3),
           "gflop_per_step": round(flops / 1e9, 3),
           "achieved_gflops": round(flops / 1e9 * rate, 2),
           "quick_preset_s_estimate": round(cfg.train.steps / rate, 1)}
    if full:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = train(cfg, Path(d) / "run", device=str(dev))
            out["quick_preset_s"] = round(time.perf_counter() - t0, 1)
            out["quick_preset_status"] = res["status"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(methods.names()))
    p.add_argument("--steps", type=int, default=10, help="timed steps per method")
    p.add_argument("--skip-full", action="store_true", help="no full quick-preset runs")
    p.add_argument("--device")
    a = p.parse_args()
    dev = pick_device(a.device)
    result = {"device": str(dev), "torch_threads": torch.get_num_threads(),
              "load_average_1min_at_start": round(os.getloadavg()[0], 2),
              "matmul_gflops": round(matmul_gflops(dev), 1), "methods": []}
    for name in a.methods.split(","):
        r = measure(name.strip(), a.steps, not a.skip_full, dev)
        if r["precision"] == "bfloat16" and "matmul_gflops_bf16" not in result:
            result["matmul_gflops_bf16"] = round(matmul_gflops(dev, dtype=torch.bfloat16), 1)
        peak = result["matmul_gflops_bf16" if r["precision"] == "bfloat16" else "matmul_gflops"]
        r["fraction_of_matmul"] = round(r["achieved_gflops"] / peak, 3)  # of its own precision's
        result["methods"].append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

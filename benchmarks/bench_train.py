"""Training throughput on this machine, against a naive reference loop in the same run.

Prints JSON. For the Shapes3D and MNIST paper configs (the ABC supplement S8.1, S8.2):
- steps/s of `acc_core.train.train` (index-arithmetic set sampling, one batched forward for
  all sets of a step, log-softmax loss);
- steps/s of a naive loop: per step, each set is curated by filtering the whole label array
  (as the original code does), A and B go through separate forwards, and the loss is written
  with explicit soft-nearest-neighbour and cycle loops over set pairs;
- the ratio, and the achieved GFLOP/s (forward + backward = 3x the forward FLOPs) against a
  large fp32 matmul measured in the same run;
- the wall time of the whole MNIST paper preset (500 steps), target <= 90 s on 2 CPU cores.

MNIST timings use the real MNIST test split when present (same images shape and network as
the train split); otherwise the bundled digits upsampled to 28x28.

    python benchmarks/bench_train.py [--steps 6] [--skip-full-mnist] [--device cpu]
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
import torch.nn.functional as F

from acc_core import data as data_sources
from acc_core import train as train_mod
from acc_core.config import preset
from acc_core.models import build_encoder, count_flops

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def matmul_gflops(device, n=2048, reps=10, dtype=torch.float32) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def mnist_dataset():
    from acc_core import data as data_sources

    if (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        from acc_core.data.mnist import load_mnist

        return load_mnist(SHARED_MNIST, split="test"), "mnist test split"
    return data_sources.load("digits"), "digits (MNIST files not found)"


def optimised_steps_per_s(cfg, dataset, steps, device) -> float:
    """The real training loop, timed from its own log (snapshots excluded)."""
    import dataclasses

    cfg = cfg.replace(train=dataclasses.replace(
        cfg.train, steps=steps, checkpoint_every=10**9, snapshot_every=10**9, probe_size=64))
    real_load = data_sources.load_for
    data_sources.load_for = lambda c, split="train": dataset  # every split: this dataset
    try:
        with tempfile.TemporaryDirectory() as d:
            train_mod.train(cfg, d, device=str(device))
            recs = [json.loads(x) for x in (Path(d) / "log.jsonl").read_text().splitlines()]
    finally:
        data_sources.load_for = real_load
    # time between the first and last step: excludes start-up and the first (warm-up) step
    return (len(recs) - 1) / (recs[-1]["time"] - recs[0]["time"])


def naive_steps_per_s(cfg, dataset, steps, device) -> float:
    """Straightforward eager loop: per-set filtering, separate forwards, looped loss."""
    t = cfg.train
    labels = dataset.factors(np.arange(len(dataset)))  # (N, K) the whole label array
    k_of = {n: i for i, n in enumerate(dataset.factor_names)}
    held = {k_of[n]: set(v) for n, v in cfg.data.held_out.items()}
    keep = np.ones(len(labels), bool)
    for k, vals in held.items():
        keep &= ~np.isin(labels[:, k], list(vals))
    torch.manual_seed(0)
    h, _, c = dataset.image_shape
    size = cfg.data.image_size or h
    model = build_encoder(cfg.model.encoder, cfg.model.embedding_dim, in_channels=c,
                          image_size=size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    rng = np.random.default_rng(0)

    def curate(inactive):
        mask = keep.copy()
        for name in inactive:
            k = k_of[name]
            allowed = [v for v in range(dataset.factor_sizes[k]) if v not in held.get(k, ())]
            mask &= labels[:, k] == rng.choice(allowed)
        pool = np.flatnonzero(mask)  # filters all N labels for every set
        return rng.choice(pool, t.set_size, replace=False)

    def embed(idx):
        x = train_mod.to_tensor(dataset.images(np.sort(idx)), cfg.data.image_size, device)
        return model(x)

    def one_direction(a, b):
        loss = 0.0
        for i in range(len(a)):
            d_ab = -((a[i] - b) ** 2).sum(1) / t.temperature
            soft = (F.softmax(d_ab, 0)[:, None] * b).sum(0)
            d_back = -((soft - a) ** 2).sum(1) / t.temperature
            loss = loss - F.log_softmax(d_back, 0)[i]
        return loss / len(a)

    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = 0.0
        for _ in range(t.pairs_per_step):
            a = embed(curate(cfg.set_a.inactive))
            b = embed(curate(cfg.set_b.inactive))
            loss = loss + one_direction(a, b) + one_direction(b, a)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 1.0 / float(np.median(times[1:]))


def full_mnist_seconds(cfg, dataset, device) -> float:
    real_load = data_sources.load_for
    data_sources.load_for = lambda c, split="train": dataset  # every split: this dataset
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            out = train_mod.train(cfg, d, device=str(device))
            assert out["status"] == "done", out
            return time.perf_counter() - t0
    finally:
        data_sources.load_for = real_load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6, help="timed steps per loop (Shapes3D)")
    ap.add_argument("--mnist-steps", type=int, default=30)
    ap.add_argument("--skip-full-mnist", action="store_true")
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    device = train_mod.pick_device(args.device)
    from acc_core import data as data_sources

    out = {"device": str(device), "torch_threads": torch.get_num_threads(),
           "load_average_1min_at_start": round(os.getloadavg()[0], 2),
           "matmul_gflops_fp32": round(matmul_gflops(device), 1), "configs": {}}
    mnist, mnist_name = mnist_dataset()
    cases = [
        ("shapes3d_paper", preset("paper", "shapes3d-procedural"),
         data_sources.load("shapes3d-procedural"), args.steps),
        ("mnist_paper", preset("paper", "mnist"), mnist, args.mnist_steps),
    ]
    for name, cfg, ds, steps in cases:
        fast = optimised_steps_per_s(cfg, ds, steps + 1, device)
        naive = naive_steps_per_s(cfg, ds, max(3, steps // 2), device)
        h, _, _ = ds.image_shape
        model = build_encoder(cfg.model.encoder, cfg.model.embedding_dim,
                              in_channels=ds.image_shape[2], image_size=cfg.data.image_size or h)
        imgs = 2 * cfg.train.set_size * cfg.train.pairs_per_step
        flops_step = 3 * count_flops(model, cfg.data.image_size or h) * imgs
        gflops = flops_step * fast / 1e9
        out["configs"][name] = {
            "data": mnist_name if name.startswith("mnist") else ds.name,
            "steps_per_s": round(fast, 3),
            "naive_steps_per_s": round(naive, 3),
            "speedup_vs_naive": round(fast / naive, 2),
            "gflop_per_step": round(flops_step / 1e9, 2),
            "achieved_gflops": round(gflops, 1),
            "fraction_of_matmul": round(gflops / out["matmul_gflops_fp32"], 3),
            "paper_preset_seconds_estimate": round(cfg.train.steps / fast, 1),
        }
    if not args.skip_full_mnist:
        secs = full_mnist_seconds(preset("paper", "mnist"), mnist, device)
        out["mnist_paper_preset_500_steps_seconds"] = round(secs, 1)
        out["mnist_paper_preset_target_seconds"] = 90
        out["mnist_paper_preset_within_target"] = secs <= 90
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())

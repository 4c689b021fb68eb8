"""Embedding throughput of the Shapes3D encoder (the ABC supplement Table S3, 64-D), at the
quick preset's 32x32 and the paper's 64x64, in one run.

Prints JSON. For each resolution, images/s of the product path (`acc_core.embed.embed`:
inference mode, channels-last, batches of 512, the next chunk rendered in a thread while the
current one is embedded) in float32 and in bfloat16 (where the CPU has native bf16), against
the baseline measured in the same run: the same model's plain batched forward (autograd on,
channels-first, batches of 512), with the images rendered between batches. Two settings:

- `network`: images already in memory (the network alone);
- `end_to_end`: from dataset indices, the procedural renderer included (what the large view
  does when no `acc data render` cache exists).

Methods are timed in turn, best of 3 rounds each, so a burst of load hits all of them.
`--all` also embeds all 480,000 images at 32x32 through the product path, as the large view
does for a quick run, and reports the seconds (`--all 5000`: the first 5,000, a quick check).

    python benchmarks/bench_embed.py [--n 4096] [--device cpu] [--all [N]]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from acc_core import embed
from acc_core.config import preset
from acc_core.data.shapes3d_procedural import load_procedural
from acc_core.models import build_encoder
from acc_core.train import pick_device, to_tensor


class InMemory:
    """A dataset whose images are already rendered (the `network` setting)."""

    def __init__(self, images: np.ndarray):
        self._images = images

    def images(self, idx):
        return self._images[idx]


def best_rates(fns: dict, n: int, rounds: int = 3) -> dict:
    """images/s of each `fn()` (which handles n images), best of `rounds`, timed in turn."""
    best = {k: 0.0 for k in fns}
    for k, fn in fns.items():
        fn()  # warm-up: oneDNN picks its kernels on the first call of a shape
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = max(best[k], n / (time.perf_counter() - t0))
    return best


def bench_size(size: int, n: int, dev, precisions: list[str]) -> dict:
    cfg = preset("quick", "shapes3d-procedural")
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, image_size=size))
    ds = load_procedural(size=size)
    idx = np.random.default_rng(0).choice(len(ds), n, replace=False)
    images = ds.images(idx)  # (n, size, size, 3) uint8
    torch.manual_seed(0)
    plain_model = build_encoder("shapes3d", cfg.model.embedding_dim, image_size=size).to(dev)
    fast_model = build_encoder("shapes3d", cfg.model.embedding_dim, image_size=size)
    fast_model.load_state_dict(plain_model.state_dict())
    fast_model = embed.prepare(fast_model, dev)
    mem = InMemory(images)
    positions = np.arange(n)

    def plain(load):
        def run():
            for i in range(0, n, 512):
                batch = load(i)
                plain_model(to_tensor(batch, None, dev))
        return run

    fns = {"baseline_plain_batched": plain(lambda i: images[i:i + 512])}
    e2e = {"baseline_plain_batched": plain(lambda i: ds.images(idx[i:i + 512]))}
    for p in precisions:
        fns[f"product_{p}"] = lambda p=p: embed.embed(fast_model, cfg, mem, positions, dev,
                                                      precision=p)
        e2e[f"product_{p}"] = lambda p=p: embed.embed(fast_model, cfg, ds, idx, dev, precision=p)
    net, end = best_rates(fns, n), best_rates(e2e, n)
    out = {}
    for name, rates in (("network", net), ("end_to_end", end)):
        base = rates["baseline_plain_batched"]
        out[name] = {k: round(v, 1) for k, v in rates.items()}
        out[name].update({f"speedup_{k}": round(v / base, 2) for k, v in rates.items()
                          if k.startswith("product")})
    with torch.inference_mode():  # how far bf16 moves the codes, relative to their norm
        ref = plain_model(to_tensor(images[:512], None, dev)).float()
    for p in precisions[1:]:
        codes = torch.from_numpy(embed.embed(fast_model, cfg, mem, positions[:512], dev,
                                             precision=p)["embedding"])
        dev_ = (codes - ref.cpu()).norm(dim=1).max() / ref.cpu().norm(dim=1).mean()
        out[f"max_relative_deviation_{p}"] = round(float(dev_), 4)
    return out


def embed_all(dev, precision: str, n: int) -> dict:
    """The first n (all 480,000) images at 32x32 through the product path, as the large view
    embeds a quick run's whole dataset."""
    cfg = preset("quick", "shapes3d-procedural")
    ds = load_procedural(size=cfg.data.image_size)
    torch.manual_seed(0)
    model = embed.prepare(cfg.method.build(cfg, ds), dev)
    t0 = time.perf_counter()
    codes = embed.embed(model, cfg, ds, np.arange(min(n, len(ds))), dev, precision=precision)
    seconds = time.perf_counter() - t0
    n = len(codes["embedding"])
    return {"images": n, "precision": precision, "seconds": round(seconds, 1),
            "images_per_s": round(n / seconds, 1),
            "rendered_from_cache": bool(getattr(ds, "materialised", False)),
            "codes_shape": list(codes["embedding"].shape)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096, help="images per timed call")
    ap.add_argument("--device", default=None)
    ap.add_argument("--all", type=int, nargs="?", const=480_000, default=None, metavar="N",
                    help="also embed all 480,000 images at 32x32 (or the first N, to check it)")
    args = ap.parse_args()
    dev = pick_device(args.device)
    precisions = ["float32"] + (["bfloat16"] if embed.bf16_native(dev) else [])
    out = {"device": str(dev), "torch_threads": torch.get_num_threads(), "images": args.n,
           "cpus": os.cpu_count(), "load_average_1min_start": round(os.getloadavg()[0], 2),
           "bf16_native": embed.bf16_native(dev)}
    for size in (32, 64):
        out[f"{size}x{size}"] = bench_size(size, args.n, dev, precisions)
    if args.all:
        out["all_at_32x32"] = embed_all(dev, embed.default_precision(dev), args.all)
    out["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Embedding throughput of the Shapes3D encoder (the ABC supplement Table S3, 64x64, 64-D).

Prints JSON: images/s of `acc_core.train.embed_images` (batches of 512, no autograd,
channels-last) against two baselines measured in the same run: the same batches in the
default (channels-first) memory layout with autograd on, and one image at a time.

    python benchmarks/bench_embed.py [--n 2048] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import images_per_second as rate  # noqa: E402  (best of 3 timed rounds)

from acc_core.data.shapes3d_render import render  # noqa: E402
from acc_core.models import build_encoder  # noqa: E402
from acc_core.train import embed_images, pick_device, to_tensor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    dev = pick_device(args.device)
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, s, args.n) for s in (10, 10, 10, 8, 4, 15)], 1)
    images = render(factors, 64).numpy()  # (n, 64, 64, 3) uint8
    torch.manual_seed(0)
    model = build_encoder("shapes3d", 64).to(dev)
    fast_model = build_encoder("shapes3d", 64).to(dev, memory_format=torch.channels_last)
    fast_model.load_state_dict(model.state_dict())

    fast = rate(lambda: embed_images(fast_model, images, None, dev, batch=512), len(images))

    def plain():
        for i in range(0, len(images), 512):
            model(to_tensor(images[i:i + 512], None, dev))

    baseline = rate(plain, len(images))
    singles = images[:64]

    def one_at_a_time():
        with torch.no_grad():
            for im in singles:
                model(to_tensor(im[None], None, dev))

    single = rate(one_at_a_time, len(singles))
    print(json.dumps({
        "device": str(dev), "torch_threads": torch.get_num_threads(), "images": args.n,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "embed_images_per_s": round(fast, 1),
        "baseline_batched_autograd_channels_first_per_s": round(baseline, 1),
        "baseline_one_at_a_time_per_s": round(single, 1),
        "speedup_vs_batched_baseline": round(fast / baseline, 2),
        "speedup_vs_one_at_a_time": round(fast / single, 2),
    }, indent=2))


if __name__ == "__main__":
    main()

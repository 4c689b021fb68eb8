"""Seconds of every disentanglement metric on one run's codes of a 10,000-point sample, beside
the reference recipe (DCI with disentanglement_lib's gradient-boosted trees) on the same codes.

The codes: the shipped `shapes3d-wall-hue` ACC run (64-D, 32 px) encoding a uniform sample of
the procedural Shapes3D grid. Prints JSON with the load average.

    python benchmarks/bench_metrics.py [--n 10000] [--reference-n 2000] [--run shapes3d-wall-hue]

The reference DCI (100 boosting rounds x one tree per class x six factors, single-threaded) had
not finished after 7 minutes on 10,000 points of a 64-D code on 2 quiet cores, so by default it
and the fast mode are compared on the first 2,000 points; `--reference-n 10000` runs the full size.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from acc_core import data as data_sources
from acc_core.analysis import metrics
from acc_core.analysis.metrics import _common as metrics_common
from acc_core.paths import pretrained_dir
from acc_core.train import encode_images, load_model


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="points of the sample")
    ap.add_argument("--reference-n", type=int, default=2_000,
                    help="points for the reference DCI (0: skip it)")
    ap.add_argument("--run", default="shapes3d-wall-hue", help="a shipped run with weights")
    args = ap.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    torch.manual_seed(0)
    model, cfg = load_model(pretrained_dir() / args.run)
    ds = data_sources.load_for(cfg.data)
    idx = np.sort(np.random.default_rng(0).choice(len(ds), args.n, replace=False))
    factors = ds.factors(idx)
    codes, t_encode = timed(lambda: encode_images(model, cfg, ds.images(idx), "cpu",
                                                  cfg.method.representations[0]))
    codes = np.asarray(codes, dtype=np.float64)
    out = {"run": args.run, "n": args.n, "dims": int(codes.shape[1]),
           "torch_threads": torch.get_num_threads(),
           "metric_threads": metrics_common.workers(), "encode_s": round(t_encode, 2),
           "seconds": {}}
    for name, fn in [("mig", metrics.mig), ("sap", metrics.sap), ("dci_fast", metrics.dci),
                     ("modularity_explicitness", metrics.modularity_explicitness),
                     ("factor_vae", metrics.factor_vae), ("beta_vae", metrics.beta_vae),
                     ("irs", metrics.irs)]:
        res, t = timed(fn, codes, factors)
        out["seconds"][name] = round(t, 2)
        if name == "dci_fast":
            out["dci_fast"] = {k: round(v, 4) for k, v in res.items() if k != "mode"}
    out["all_metrics_s"] = round(sum(out["seconds"].values()), 2)
    for align in ("pca", "ica"):
        _, t = timed(metrics.all_metrics, codes, factors, align_to=align)
        out["seconds"][f"all_metrics_{align}"] = round(t, 2)
    if args.reference_n:
        m = min(args.reference_n, args.n)
        res, t = timed(metrics.dci, codes[:m], factors[:m], mode="reference")
        out["reference"] = {"dci_reference_s": round(t, 2), "n": m,
                            **{k: round(v, 4) for k, v in res.items() if k != "mode"}}
        fast, t_fast = timed(metrics.dci, codes[:m], factors[:m], mode="fast")
        out["reference"]["dci_fast_same_n_s"] = round(t_fast, 2)
        out["reference"]["speedup_fast_over_reference"] = round(t / t_fast, 1)
    out["load_average_1min"] = {"start": load_start, "end": round(os.getloadavg()[0], 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

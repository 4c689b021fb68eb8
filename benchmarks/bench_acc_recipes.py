"""ACC's Shapes3D recipes side by side on Figure 3c's hardest scenario (all three hues
inactive): mutual information per factor at the loss's length scale sqrt(tau), and the
wall time of each whole run, beside the load average when it started and ended.

Recipes (`acc_core.methods.acc.RECIPES`): `paper` (the ABC supplement S8.1), `quick-300`
(the former quick preset: 32x32, 300 steps at lr 3e-4, Glorot output layer) and `quick`
(the current quick preset). Each run goes through the same `acc_core.train.train` as the
CLI and the worker (snapshots and evaluation included) in a scratch folder. Writes JSON to
stdout and, with --out, to a file (docs/make_reproduction.py reads
benchmarks/results/bench_acc_recipes.json for the report's ablation table).

    python benchmarks/bench_acc_recipes.py [--recipes quick,quick-300] [--seeds 0-4] [--out FILE]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acc_core import evaluate  # noqa: E402
from acc_core.config import SetSpec  # noqa: E402
from acc_core.methods.acc import RECIPES  # noqa: E402
from acc_core.train import train  # noqa: E402

HUES = ("floor_hue", "wall_hue", "object_hue")


def seeds_of(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def one_run(recipe: str, seed: int) -> dict:
    cfg = RECIPES[recipe]("shapes3d-procedural")
    cfg = cfg.replace(set_a=SetSpec(inactive=HUES), set_b=SetSpec(inactive=HUES),
                      train=cfg.train.__class__(**{**cfg.train.__dict__, "seed": seed}))
    with tempfile.TemporaryDirectory() as d:
        load_start = os.getloadavg()
        t0 = time.perf_counter()
        train(cfg, d)
        seconds = time.perf_counter() - t0
        load_end = os.getloadavg()
        rates = [json.loads(line)["steps_per_s"] for line in open(Path(d) / "log.jsonl")
                 if '"steps_per_s"' in line]
        sigma = evaluate.default_sigma(d)
        mi = evaluate.mi_at(d, sigma, "final")
        names = evaluate.embeddings(d, "final")["factor_names"]
        precision = json.loads((Path(d) / "metrics.json").read_text()).get("precision", "float32")
    import torch

    return {"recipe": recipe, "seed": seed, "run_id": cfg.run_id, "seconds": round(seconds, 1),
            "torch_threads": torch.get_num_threads(), "precision": precision,
            "steps": cfg.train.steps, "steps_per_s": round(rates[-1], 2),
            "load_avg_1min": [round(load_start[0], 2), round(load_end[0], 2)], "sigma": sigma,
            "mi": {n: round(float(v), 3) for n, v in zip(names, mi)}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default="quick,quick-300")
    p.add_argument("--seeds", default="0-4")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    runs = []
    for recipe in a.recipes.split(","):
        for seed in seeds_of(a.seeds):
            runs.append(one_run(recipe, seed))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    import torch

    # The torch thread count changes a run's numerics: runs that end near the loss's plateau
    # (quick-300) reach other final states with 1 and with 2 threads.
    out = {"scenario": "all three hues inactive in A and B", "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "runs": runs}
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        if a.out.exists():  # keep the other recipes' runs of an earlier invocation
            old = json.loads(a.out.read_text())
            done = {(r["recipe"], r["seed"]) for r in runs}
            out["runs"] = [r for r in old["runs"] if (r["recipe"], r["seed"]) not in done] + runs
            text = json.dumps(out, indent=1)
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Benchmark the noise sweep of I(U + N(0, σ²I); G) (the ABC supplement S1, Figures S1c,d) and print JSON.

Three ways to get the paper's sweep (40 σ x 6 factors) on 10,000 64-D embeddings with
Shapes3D-like cluster structure, in the same run:

- fast: `noise_sweep` (distance and projection matrices once for all σ, one GEMM for
  every factor's class sums);
- naive: the same Gaussian-mixture Monte Carlo recomputed from scratch for every (σ, factor):
  noisy samples, full distance matrix, two log-sum-exps. Timed on `--naive-sigmas` σ for
  all factors and extrapolated linearly to the whole sweep (said so in the JSON);
- MINE at the paper's settings (20,000 steps, batch 256, lr 3e-4, 256,000 evaluation
  samples) for one (σ, factor); a full MINE sweep is 240 such estimates. With
  `--mine-steps` below 20,000 the time is extrapolated linearly (also said so).

Usage: python benchmarks/bench_mi.py [--n 10000] [--mine-steps 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from acc_core.analysis import mi

FACTOR_SIZES = (10, 10, 10, 8, 4, 15)  # Shapes3D's factors
FACTOR_SCALES = (1.0, 0.6, 0.4, 0.25, 0.15, 0.05)  # some factors dominate, some barely show


def synthetic_embeddings(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (n, dim) = Σ_k scale_k · centre_k[value_k] + small noise; factors (n, 6)."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, s, n) for s in FACTOR_SIZES], 1)  # (n, K)
    u = 0.02 * rng.normal(size=(n, dim))
    for k, (size, scale) in enumerate(zip(FACTOR_SIZES, FACTOR_SCALES)):
        u += scale * rng.normal(size=(size, dim))[f[:, k]]
    return u.astype(np.float32), f


def naive_channel_mi(u: torch.Tensor, g: torch.Tensor, sigma: float, centres, eps) -> float:
    """Everything recomputed for one (σ, factor): t = u_i + σε, ‖t − u_n‖², log-sum-exps."""
    t = u[centres] + sigma * eps  # (S, D)
    logits = -torch.cdist(t, u).pow(2) / (2 * sigma**2)  # (S, N)
    log_p = torch.logsumexp(logits, 1) - math.log(len(u))  # (S,) log p(t)
    own = g[None, :] == g[centres][:, None]  # (S, N) same class as the sample's centre
    n_g = own.sum(1).double()  # (S,)
    log_p_g = torch.logsumexp(logits.masked_fill(~own, -torch.inf), 1) - n_g.log()  # (S,)
    return float((log_p_g - log_p).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n-samples", type=int, default=2048, help="Monte Carlo samples (the default of noise_sweep)")
    ap.add_argument("--naive-sigmas", type=int, default=4, help="σ values timed for the naive baseline")
    ap.add_argument("--mine-steps", type=int, default=20_000)
    args = ap.parse_args()

    u, f = synthetic_embeddings(args.n, args.dim)
    k = f.shape[1]

    t0, c0 = time.perf_counter(), time.process_time()
    sweep = mi.noise_sweep(u, f, n_samples=args.n_samples)
    fast_s, fast_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    sigmas, fast = sweep["sigmas"], sweep["mi"]  # (S,), (K, S)

    # Naive baseline on every len(sigmas)/naive_sigmas-th σ, all factors, fresh samples each time.
    pick = np.linspace(0, len(sigmas) - 1, args.naive_sigmas).round().astype(int)
    ut = torch.from_numpy(u).double()
    ft = torch.from_numpy(f)
    gen = torch.Generator().manual_seed(0)
    naive = np.zeros((k, len(pick)))
    t0 = time.perf_counter()
    for j, si in enumerate(pick):
        for kk in range(k):
            centres = torch.randperm(args.n, generator=gen)[: args.n_samples]
            eps = torch.randn(args.n_samples, args.dim, generator=gen, dtype=torch.float64)
            naive[kk, j] = naive_channel_mi(ut, ft[:, kk], float(sigmas[si]), centres, eps)
    naive_part_s = time.perf_counter() - t0
    naive_s = naive_part_s * len(sigmas) / len(pick)

    # MINE for factor 0 at the σ where the fast estimate is nearest H(G)/2.
    k_mine = 0
    s_idx = int(np.abs(fast[k_mine] - sweep["entropy"][k_mine] / 2).argmin())
    sigma_mine = float(sigmas[s_idx])
    t0 = time.perf_counter()
    mine_value = mi.mine_mi(u, f[:, k_mine], sigma=sigma_mine, steps=args.mine_steps)
    mine_run_s = time.perf_counter() - t0
    mine_one_s = mine_run_s * max(1.0, 20_000 / args.mine_steps)
    mine_sweep_s = mine_one_s * len(sigmas) * k

    print(json.dumps({
        "benchmark": "noise sweep of I(U + N(0, s^2 I); G)",
        "data": {"n": args.n, "dim": args.dim, "factors": k, "factor_sizes": FACTOR_SIZES,
                 "n_sigmas": len(sigmas), "n_samples": args.n_samples, "torch_threads": torch.get_num_threads()},
        "fast_sweep_s": round(fast_s, 3),
        "fast_sweep_cpu_s": round(fast_cpu_s, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "naive_sweep_s": round(naive_s, 3),
        "naive_note": f"naive timed on {len(pick)} of {len(sigmas)} sigmas x {k} factors "
                      f"({naive_part_s:.2f} s) and extrapolated linearly",
        "speedup_fast_vs_naive": round(naive_s / fast_s, 2),
        "max_abs_diff_fast_vs_naive_nats": round(float(np.abs(naive - fast[:, pick]).max()), 4),
        "diff_note": "independent Monte Carlo samples (and no control variate) in the naive run",
        "mine_steps_run": args.mine_steps,
        "mine_one_estimate_s": round(mine_one_s, 2),
        "mine_note": "measured at 20,000 steps" if args.mine_steps >= 20_000 else
                     f"measured at {args.mine_steps} steps ({mine_run_s:.2f} s incl. evaluation), "
                     "extrapolated linearly to 20,000",
        "mine_sweep_s_estimated": round(mine_sweep_s, 1),
        "ratio_mine_sweep_vs_fast_sweep": round(mine_sweep_s / fast_s, 1),
        "agreement": {"factor": k_mine, "sigma": round(sigma_mine, 5),
                      "gaussian_channel_nats": round(float(fast[k_mine, s_idx]), 4),
                      "mine_nats": round(mine_value, 4),
                      "abs_diff_nats": round(abs(mine_value - float(fast[k_mine, s_idx])), 4),
                      "entropy_nats": round(float(sweep["entropy"][k_mine]), 4)},
    }, indent=2))


if __name__ == "__main__":
    main()

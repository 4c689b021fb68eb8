"""Mutual information I(U; G) between embeddings U and a generative factor G.

The ABC supplement S1-S2: a deterministic encoder keeps all information, so Gaussian noise
η ~ N(0, σ²I) is added to the embeddings and I(U + η; G) is swept over 40 log-spaced σ;
information about inactive factors vanishes below the loss's length scale (√τ for
`l2sq`, τ for `l2`). The ACC paper appendix B: for 2-D embeddings, a histogram estimate.

Three estimators, all over the empirical distribution of the N embeddings u_n (labels g_n):

- `gaussian_channel_mi` (exact up to Monte Carlo). T = u_i + σε with i uniform and
  ε ~ N(0, I) has the Gaussian-mixture density p(t) = (1/N) Σ_n N(t; u_n, σ²I), and
  p(t | g) = (1/N_g) Σ_{n: g_n = g} N(t; u_n, σ²I). So
      I(T; G) = E_{i, ε}[ log p(t | g_i) − log p(t) ]
              = E[ LSE_{n: g_n = g_i}(e_n) − LSE_n(e_n) ] + E[ log(N / N_{g_i}) ],
  with e_n = −‖t − u_n‖² / (2σ²) (the Gaussian normaliser cancels). Writing
  ‖t − u_n‖² = ‖u_i − u_n‖² + 2σ ε·(u_i − u_n) + σ²‖ε‖² and dropping the last term
  (constant along a row, it cancels between the two log-sum-exps):
      e_n(σ) = −D_in / (2σ²) − P_in / σ,   D = ‖u_i − u_n‖²,  P = ε·(u_i − u_n).
  D and P (S, N) are computed once for all σ (same ε for every σ: common random numbers
  give smooth curves); each σ is then elementwise work, one exp, and one matrix product of
  the weights e^(e_n − c_s) with the stacked one-hot matrix of every factor, which gives
  all class-conditional sums (and, from a row of ones, the total) at once. The row shift
  c_s comes from the bound e_n = ‖ε‖²/2 − ‖t − u_n‖²/(2σ²) <= ‖ε‖²/2, so no per-σ row
  maximum is needed, and the own centre (e = 0) keeps the own-class sum away from 0. Sample
  centres i are a stratified draw (shuffled copies of 0..N-1), one ε per sample; the
  known mean of log(N / N_{g_i}), H(G), serves as a control variate.
- `mine_mi`: MINE (Belghazi et al. 2018) as the ABC supplement S1 describes it.
- `histogram_mi`: the ACC paper appendix B, I = H(U) − H(U | G) on shared 2-D bins.

All quantities are in nats.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from acc_core.analysis.arrays import _codes, as_embeddings, as_factors, as_labels, entropy  # noqa: F401


def _check_sigmas(sigmas) -> np.ndarray:
    s = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("sigmas must be a non-empty list of finite noise scales > 0, e.g. [0.1, 1.0].")
    return s


def gaussian_channel_mi_multi(
    u, factors, sigmas, *, n_samples: int = 2048, seed: int = 0, chunk_elements: int = 1 << 22
) -> np.ndarray:
    """I(U + N(0, σ²I); G_k) for every factor column k and every σ: float64 (K, len(sigmas)).

    `u` (N, D) embeddings, `factors` (N, K) integer labels. `n_samples` Monte Carlo samples t
    (standard error roughly 0.5/√n_samples nats); `chunk_elements` bounds the (rows, N)
    blocks held in memory (about 30 bytes each).
    """
    u64 = as_embeddings(u)
    f = as_factors(factors, len(u64))
    s = _check_sigmas(sigmas)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}; use e.g. 4096.")
    n, _ = u64.shape
    u_t = torch.from_numpy(u64 - u64.mean(0))  # (N, D) float64; centring keeps D precise

    # Stacked one-hot matrix of every factor, plus a row of ones for the total sum.
    codes, sizes = zip(*[_codes(col) for col in f.T])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # (K,)
    cols_t = torch.from_numpy(np.stack(codes, 1) + offsets[None, :])  # (N, K) own-class column
    c_tot = int(np.sum(sizes))
    onehot_t = torch.zeros(c_tot + 1, n, dtype=torch.float64)  # (C+1, N), transposed: faster GEMM
    onehot_t[cols_t.T, torch.arange(n)[None, :]] = 1.0
    onehot_t[c_tot] = 1.0
    counts = onehot_t[:c_tot].sum(1)  # (C,) N_g of every class of every factor
    onehot_by_dtype = {torch.float64: onehot_t, torch.float32: onehot_t.float()}

    gen = torch.Generator().manual_seed(int(seed))
    reps = -(-n_samples // n)
    centres = torch.cat([torch.randperm(n, generator=gen) for _ in range(reps)])[:n_samples]  # (S,)
    eps = torch.randn(n_samples, u_t.shape[1], generator=gen, dtype=torch.float64)  # (S, D)
    sq = (u_t * u_t).sum(1)  # (N,)
    # e_n = ‖ε‖²/2 − ‖t − u_n‖²/(2σ²) <= ‖ε‖²/2, and the sample's own centre has e = 0.
    # Shifting row s by c_s = max(0, ‖ε_s‖²/2 − 40) keeps every weight <= e^40 (no
    # overflow) and the own-class sum >= e^-c_s (no underflow), without a per-σ row max.
    # float32 suffices while c_s <= 40 (‖ε‖² <= 160: every row for D = 64); chunks with
    # wider rows use float64.
    shift = (0.5 * (eps * eps).sum(1) - 40.0).clamp_min(0.0)  # (S,)
    order = shift.argsort()  # rows needing a shift (or float64) end up in the same chunks
    centres, eps, shift = centres[order], eps[order], shift[order]

    # y_s = log(N / N_{g_i}) per sample and factor: the σ-independent part of the estimate.
    y = (math.log(n) - counts[cols_t[centres]].log()).numpy()  # (S, K)
    r_sum = np.zeros((f.shape[1], len(s)))  # Σ_s r_s, r = log(own-class sum / total)
    ry_sum = np.zeros((f.shape[1], len(s)))  # Σ_s r_s y_s, for the control variate below
    rows_per_chunk = max(1, chunk_elements // n)
    # No toggling of torch's process-wide thread count here: the app's threaded server runs
    # several of these at once, and one call could leave another stuck at one thread.
    for start in range(0, n_samples, rows_per_chunk):
        idx = centres[start : start + rows_per_chunk]  # (R,)
        e, uc = eps[start : start + len(idx)], u_t[idx]  # (R, D), (R, D)
        d = (sq[idx, None] + sq[None, :] - 2.0 * (uc @ u_t.T)).clamp_min_(0.0)  # (R, N)
        p = (e * uc).sum(1, keepdim=True) - e @ u_t.T  # (R, N)
        r = torch.arange(len(idx))
        d[r, idx] = 0.0  # exact zeros for the sample's own centre
        p[r, idx] = 0.0
        c = shift[start : start + len(idx), None]  # (R, 1)
        dtype = torch.float64 if c.max() > 40.0 else torch.float32
        dw, pw, cw, oh = d.to(dtype), p.to(dtype), c.to(dtype), onehot_by_dtype[dtype]
        # Exponents are floored just above the subnormal range (e^-80 in float32): exp is
        # ~10x slower on arguments whose result underflows, and the floor adds at most
        # e^-80 per point to sums that are >= e^-40 (the own centre): relative error < N e^-40.
        floor = -80.0 if dtype == torch.float32 else -700.0
        own_cols = cols_t[idx]  # (R, K)
        for j, sigma in enumerate(s):
            w = torch.mul(dw, -0.5 / sigma**2).add_(pw, alpha=-1.0 / sigma)  # (R, N) e_n
            if c.any():
                w.sub_(cw)
            w.clamp_min_(floor).exp_()
            sums = (oh @ w.T).T  # (R, C+1) class-conditional sums and the total
            own = sums.gather(1, own_cols).double()  # (R, K)
            ratio = own.log() - sums[:, c_tot : c_tot + 1].double().log()  # (R, K)
            # Only for float64 rows with c_s > ~650 (D in the thousands) can the own-class sum
            # underflow; recompute those (row, factor) pairs exactly with log-sum-exp.
            for row, k in (own < 1e-280).nonzero().tolist():
                ev = -d[row] / (2 * sigma**2) - p[row] / sigma  # (N,) float64
                mask = cols_t[:, k] == own_cols[row, k]
                ratio[row, k] = torch.logsumexp(ev[mask], 0) - torch.logsumexp(ev, 0)
            r_sum[:, j] += ratio.sum(0).numpy()
            ry_sum[:, j] += (ratio.numpy() * y[start : start + len(idx)]).sum(0)
    # Plain Monte Carlo is mean(x), x = r + y. E[y] = H(G) is known exactly, so y is a
    # control variate: I = mean(x) + λ (H(G) − mean(y)), λ = cov(x, y) / var(y) estimated
    # from the same samples. At small σ x = y (λ = 1, I = H(G) exactly); at large σ x -> 0
    # (λ -> 0, I -> 0); in between it removes the noise of which classes were sampled.
    y_mean, y_var = y.mean(0)[:, None], y.var(0)[:, None]  # (K, 1)
    r_mean, ry_mean = r_sum / n_samples, ry_sum / n_samples  # (K, S)
    cov_xy = ry_mean - r_mean * y_mean + y_var  # cov(r + y, y)
    lam = np.divide(cov_xy, y_var, out=np.zeros_like(cov_xy), where=y_var > 1e-12)
    h = np.array([entropy(col) for col in f.T])[:, None]  # (K, 1)
    return r_mean + y_mean + lam * (h - y_mean)


def gaussian_channel_mi(u, g, sigmas, *, n_samples: int = 2048, seed: int = 0) -> np.ndarray:
    """I(U + N(0, σ²I); G) in nats for each σ: float64 (len(sigmas),); `g` (N,) int labels."""
    g = as_labels(g)
    return gaussian_channel_mi_multi(u, g[:, None], sigmas, n_samples=n_samples, seed=seed)[0]


def default_sigmas(u, length_scale: float | None = None, n: int = 40) -> np.ndarray:
    """40 log-spaced σ from 0.1 x the median nearest-neighbour distance to 10 x the RMS radius.

    Below the nearest-neighbour distance every point is its own island (I = H(G) when
    labels are consistent); above the radius of the cloud the noise drowns everything
    (I -> 0). The range is widened to hold [length_scale / 10, 10 x length_scale] so the
    loss's length scale always sits well inside the plot.
    """
    x = as_embeddings(u)
    x = x - x.mean(0)
    rms = float(np.sqrt((x * x).sum(1).mean()))
    sub = x[np.random.default_rng(0).permutation(len(x))[:2048]]  # (M, D) a subset is enough
    sq = (sub * sub).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * sub @ sub.T, 0.0)  # (M, M)
    np.fill_diagonal(d2, np.inf)
    nn = np.sqrt(d2.min(1)) if len(sub) > 1 else np.array([0.0])
    nn = nn[np.isfinite(nn) & (nn > 0)]
    lo = 0.1 * float(np.median(nn)) if nn.size else 1e-3 * rms
    hi = 10.0 * rms
    if length_scale:
        lo, hi = min(lo, length_scale / 10), max(hi, length_scale * 10)
    if not lo > 0 or not hi > lo:  # all embeddings equal: any range shows I = 0
        base = length_scale or 1.0
        lo, hi = base * 1e-3, base * 1e1
    return np.geomspace(lo, hi, n)


def noise_sweep(
    u,
    factors,
    sigmas=None,
    *,
    factor_names=None,
    length_scale: float | None = None,
    n_samples: int = 2048,
    seed: int = 0,
) -> dict:
    """The ABC supplement Figures S1c,d / S3: I(U + N(0, σ²I); G_k) over σ for every factor.

    Returns {sigmas (S,), mi (K, S), entropy (K,) = H(G_k) (the upper bound), factor_names,
    length_scale}. `length_scale` (the loss's, from `acc_core.losses.loss_length_scale`, or
    any scale the caller states noise in) only widens the default range so that it sits well
    inside it. Pass the codes as the loss sees them (unit rows for cosine runs).
    `sigmas=None` picks 40 log-spaced values with `default_sigmas`.
    """
    if length_scale is not None and not length_scale > 0:
        raise ValueError(f"length_scale must be > 0 or None, got {length_scale}")
    x = as_embeddings(u)
    f = as_factors(factors, len(x))
    if factor_names is None:
        factor_names = [f"factor_{k}" for k in range(f.shape[1])]
    factor_names = [str(nm) for nm in factor_names]
    if len(factor_names) != f.shape[1]:
        raise ValueError(f"got {len(factor_names)} factor names for {f.shape[1]} factor columns; pass one name per column.")
    s = default_sigmas(x, length_scale) if sigmas is None else _check_sigmas(sigmas)
    mi = gaussian_channel_mi_multi(x, f, s, n_samples=n_samples, seed=seed)
    return {
        "sigmas": s,
        "mi": mi,
        "entropy": np.array([entropy(col) for col in f.T]),
        "factor_names": factor_names,
        "length_scale": length_scale,
    }


# The estimators of their own modules, importable from here as before.
from acc_core.analysis.histogram import histogram_mi  # noqa: E402, F401
from acc_core.analysis.mine import mine_mi  # noqa: E402, F401

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

import contextlib
import math

import numpy as np
import torch

SIMILARITIES = ("l2sq", "l2", "cosine")


# ----- input checks shared by the analysis modules -------------------------------------------
def as_embeddings(u) -> np.ndarray:
    """Embeddings (N, D) as finite float64, or a ValueError that says what to pass."""
    x = np.asarray(u.detach().cpu() if isinstance(u, torch.Tensor) else u, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"embeddings must be a non-empty 2-D array (N, D), got shape {x.shape}; stack them row-wise.")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinite values; check the run that produced them.")
    return x


def as_labels(g) -> np.ndarray:
    """Integer labels (N,) as int64, or a ValueError."""
    x = np.asarray(g)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array (N,), got shape {x.shape}; pass one factor column.")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
            raise ValueError("labels must be integer value indices (e.g. dataset.factors(...)[:, k]).")
    return x.astype(np.int64)


def as_factors(factors, n: int) -> np.ndarray:
    """Factor labels (N, K) as int64 (a 1-D array is one factor), or a ValueError."""
    f = np.asarray(factors)
    if f.ndim == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[1] < 1:
        raise ValueError(f"factors must be a 2-D array (N, K) of value indices, got shape {f.shape}.")
    if f.shape[0] != n:
        raise ValueError(f"got {f.shape[0]} factor rows for {n} embeddings; pass one row per embedding.")
    return np.stack([as_labels(col) for col in f.T], 1)


@contextlib.contextmanager
def single_thread():
    """Run small-network training on one intra-op thread, restoring the setting after.

    For 128-unit layers at batch 512 thread synchronisation costs more than it saves, and on
    a busy machine a two-thread barrier can stall each op for a whole scheduler slice
    (measured: 13 µs vs 11.7 ms for one ReLU). The setting is process-wide while it lasts.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def entropy(g) -> float:
    """Empirical entropy H(G) = −Σ_v p_v log p_v of integer labels g (N,), in nats."""
    g = as_labels(g)
    _, counts = np.unique(g, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


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
    # Small problems run on one thread: their ops are too short to amortise thread barriers.
    with single_thread() if n_samples * n < (1 << 21) else contextlib.nullcontext():
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


def _codes(col: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer labels (N,) -> codes 0..C-1 (N,) and C."""
    values, inverse = np.unique(col, return_inverse=True)
    return inverse.astype(np.int64), len(values)


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


def loss_length_scale(similarity: str, temperature: float) -> float:
    """The distance below which the loss stops telling points apart.

    l2sq: logits −‖x−y‖²/τ, a Gaussian of scale √τ (up to √2). l2: −‖x−y‖/τ, scale τ.
    cosine on unit vectors: cos(x, y)/τ = −‖x−y‖²/(2τ) + 1/τ, i.e. l2sq at 2τ: √(2τ).
    """
    return {"l2sq": math.sqrt(temperature), "l2": float(temperature),
            "cosine": math.sqrt(2.0 * temperature)}[similarity]


def noise_sweep(
    u,
    factors,
    sigmas=None,
    *,
    factor_names=None,
    similarity: str = "l2sq",
    temperature: float = 1.0,
    n_samples: int = 2048,
    seed: int = 0,
) -> dict:
    """The ABC supplement Figures S1c,d / S3: I(U + N(0, σ²I); G_k) over σ for every factor.

    Returns {sigmas (S,), mi (K, S), entropy (K,) = H(G_k) (the upper bound), factor_names,
    length_scale (√τ for l2sq, τ for l2, √(2τ) for cosine), similarity, temperature}.
    For `cosine` the embeddings are L2-normalised first, since the loss sees only
    directions. `sigmas=None` picks 40 log-spaced values with `default_sigmas`.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; valid names: {', '.join(SIMILARITIES)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use the run's temperature.")
    x = as_embeddings(u)
    f = as_factors(factors, len(x))
    if factor_names is None:
        factor_names = [f"factor_{k}" for k in range(f.shape[1])]
    factor_names = [str(nm) for nm in factor_names]
    if len(factor_names) != f.shape[1]:
        raise ValueError(f"got {len(factor_names)} factor names for {f.shape[1]} factor columns; pass one name per column.")
    if similarity == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    length_scale = loss_length_scale(similarity, temperature)
    s = default_sigmas(x, length_scale) if sigmas is None else _check_sigmas(sigmas)
    mi = gaussian_channel_mi_multi(x, f, s, n_samples=n_samples, seed=seed)
    return {
        "sigmas": s,
        "mi": mi,
        "entropy": np.array([entropy(col) for col in f.T]),
        "factor_names": factor_names,
        "length_scale": length_scale,
        "similarity": similarity,
        "temperature": float(temperature),
    }


def histogram_mi(u2d, g, *, bins: int | None = None) -> float:
    """The ACC paper appendix B: I(U; G) = H(U) − H(U | G) from a 2-D histogram, in nats.

    The appendix uses "a histogram with √N bins"; we read that as √N bins in all, i.e.
    round(N^(1/4)) equal-width bins per axis over the data's range (√N per axis would
    leave about one point per bin and bias I upwards). `bins` sets the per-axis count.
    The same bins serve every conditional distribution, so the bin-width terms of the
    differential entropies cancel and I is the discrete MI of (bin, G), always >= 0.
    """
    x = as_embeddings(u2d)
    if x.shape[1] != 2:
        raise ValueError(f"histogram_mi needs 2-D embeddings (N, 2), got {x.shape[1]} dimensions; project first (e.g. PCA).")
    g = as_labels(g)
    if len(g) != len(x):
        raise ValueError(f"got {len(g)} labels for {len(x)} embeddings; pass one label per row.")
    nb = max(2, int(round(len(x) ** 0.25))) if bins is None else int(bins)
    if nb < 1:
        raise ValueError(f"bins must be >= 1, got {bins}.")
    cell = np.zeros(len(x), dtype=np.int64)
    for a in range(2):  # equal-width bins over each axis's range, shared by all conditionals
        lo, hi = x[:, a].min(), x[:, a].max()
        if hi <= lo:
            b = np.zeros(len(x), np.int64)
        else:
            b = np.minimum(((x[:, a] - lo) / (hi - lo) * nb).astype(np.int64), nb - 1)  # (N,)
        cell = cell * nb + b
    h_u = entropy(cell)
    h_u_given_g = 0.0
    for v in np.unique(g):
        m = g == v
        h_u_given_g += m.mean() * entropy(cell[m])
    return max(0.0, h_u - h_u_given_g)


def mine_mi(
    u,
    g,
    *,
    sigma: float,
    steps: int = 20000,
    batch_size: int = 256,
    lr: float = 3e-4,
    seed: int = 0,
    n_eval: int = 256_000,
    factor_encoding: str = "scalar",
    ema_rate: float = 0.01,
) -> float:
    """MINE estimate of I(U + N(0, σ²I); G) in nats (the ABC supplement S1; Belghazi et al. 2018).

    A statistics network T(t, g) (three 128-unit ReLU layers, scalar output) reads the
    concatenation of the noisy embedding and the factor value: `factor_encoding="scalar"`
    (the paper's 1-D value: the value index, standardised) or `"onehot"`. It maximises the
    Donsker-Varadhan bound  E_joint[T] − log E_marginal[e^T]; marginal pairs come from
    shuffling g within the batch. The gradient of the log term is bias-corrected with a
    moving average of E[e^T] (rate `ema_rate`), as in Belghazi et al. Fresh noise every
    batch; the noisy embeddings are standardised per dimension (an invertible map, so I is
    unchanged). Adam at `lr` for `steps` batches of `batch_size`; the estimate is the bound
    evaluated on n_eval fresh samples pooled (the paper: 256,000 samples).
    """
    x = torch.from_numpy(as_embeddings(u)).float()  # (N, D)
    labels = as_labels(g)
    if len(labels) != len(x):
        raise ValueError(f"got {len(labels)} labels for {len(x)} embeddings; pass one label per row.")
    if not sigma >= 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a finite noise scale >= 0, got {sigma}.")
    if steps < 1 or batch_size < 2 or n_eval < 1 or not lr > 0:
        raise ValueError("steps, n_eval must be >= 1, batch_size >= 2 and lr > 0; the paper uses 20000, 256000, 256, 3e-4.")
    if not 0 < ema_rate < 1:
        raise ValueError(f"ema_rate must be in (0, 1), got {ema_rate}; Belghazi et al. use about 0.01.")
    codes, n_values = _codes(labels)
    if factor_encoding == "scalar":
        c = torch.from_numpy(codes).float()[:, None]  # (N, 1)
        gval = (c - c.mean()) / c.std().clamp_min(1e-12)
    elif factor_encoding == "onehot":
        gval = torch.nn.functional.one_hot(torch.from_numpy(codes), n_values).float()  # (N, C)
    else:
        raise ValueError(f"unknown factor_encoding {factor_encoding!r}; valid: scalar, onehot.")
    mean, scale = x.mean(0), (x.var(0) + sigma**2).sqrt().clamp_min(1e-12)  # (D,), (D,)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # the network's init is seeded, global RNG untouched
        torch.manual_seed(int(seed))
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1] + gval.shape[1], 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 1),
        )
    opt = torch.optim.Adam(net.parameters(), lr=lr, foreach=True)

    def batch_scores():
        idx = torch.randint(len(x), (batch_size,), generator=gen)  # (B,)
        t = x[idx] + sigma * torch.randn(batch_size, x.shape[1], generator=gen)  # (B, D) fresh noise
        t = (t - mean) / scale
        gj = gval[idx]  # (B, c) the true factor values: joint samples
        gm = gj[torch.randperm(batch_size, generator=gen)]  # shuffled: product of marginals
        out = net(torch.cat([torch.cat([t, gj], 1), torch.cat([t, gm], 1)], 0))[:, 0]  # (2B,)
        return out[:batch_size], out[batch_size:]

    with single_thread():
        return _train_and_evaluate_mine(net, opt, batch_scores, steps, n_eval, batch_size, ema_rate)


def _train_and_evaluate_mine(net, opt, batch_scores, steps, n_eval, batch_size, ema_rate) -> float:
    """The MINE loop: maximise the DV bound with the moving-average gradient, then average it."""
    log_b = math.log(batch_size)
    log_ma = None  # log of the moving average of E_marginal[e^T]
    for _ in range(steps):
        tj, tm = batch_scores()
        log_et = torch.logsumexp(tm, 0) - log_b  # log E_marginal[e^T] on this batch
        with torch.no_grad():
            log_ma = log_et.detach() if log_ma is None else torch.logaddexp(
                log_ma + math.log1p(-ema_rate), log_et.detach() + math.log(ema_rate))
        # d/dθ of exp(log_et − log_ma) is ∇E[e^T] / moving average: the corrected gradient.
        loss = -(tj.mean() - torch.exp(log_et - log_ma))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # The bound over all n_eval samples pooled: E_joint[T] − log E_marginal[e^T]. Averaging
    # per-batch bounds instead would add Jensen's upward bias of −log of a batch mean.
    joint, marginal = [], []
    with torch.no_grad():
        for _ in range(max(1, n_eval // batch_size)):
            tj, tm = batch_scores()
            joint.append(tj.double())
            marginal.append(tm.double())
    tm_all = torch.cat(marginal)  # (n_eval,)
    return float(torch.cat(joint).mean() - (torch.logsumexp(tm_all, 0) - math.log(len(tm_all))))

"""MINE (Belghazi et al. 2018) as the ABC supplement S1 describes it: a statistics network of
three 128-unit ReLU layers trained on the Donsker-Varadhan bound, for I(U + N(0, σ²I); G)."""

from __future__ import annotations

import math

import torch

from acc_core.analysis.arrays import _codes, as_embeddings, as_labels, single_thread


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

"""Classification probes: how well each generative factor can be read from noisy embeddings.

The ACC paper appendix B (Figure 7) and the ABC supplement S1 (Figure S2): one small classifier per
factor (3 fully connected layers of 32 units, ReLU) takes the embedding as input; its
test accuracy is a proxy for the mutual information. Gaussian noise of scale σ (√τ in
the papers) is added to the embeddings to remove information on length scales below σ.

Here the K classifiers stay separate networks (their own weights and losses, as in the
papers) but are trained side by side as one batched computation: weights are stacked
(K, in, out) and every layer is one batched matmul, so K factors cost about one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from acc_core.analysis.arrays import as_embeddings, as_factors, single_thread


def _init_layers(k: int, sizes: list[int], gen: torch.Generator) -> list[torch.Tensor]:
    """PyTorch Linear's default init, U(−1/√fan_in, 1/√fan_in), for K stacked networks."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(k, fan_in, fan_out, generator=gen) * 2 - 1) * bound  # (K, in, out)
        b = (torch.rand(k, 1, fan_out, generator=gen) * 2 - 1) * bound  # (K, 1, out)
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x (B, D) shared by all K networks -> logits (K, B, C_max)."""
    w0, b0 = params[0], params[1]  # (K, D, H), (K, 1, H)
    k, d, hid = w0.shape
    # The first layer of all K networks is one GEMM: x (B, D) @ (D, K*H).
    h = (x @ w0.permute(1, 0, 2).reshape(d, k * hid)).reshape(-1, k, hid).transpose(0, 1) + b0
    n_layers = len(params) // 2
    for i in range(1, n_layers):
        h = torch.baddbmm(params[2 * i + 1], torch.relu(h), params[2 * i])  # (K, B, out)
    return h


def probe_accuracy(
    u,
    factors,
    *,
    sigma: float,
    hidden: int = 32,
    layers: int = 3,
    epochs: int = 60,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    test_fraction: float = 0.2,
    factor_names=None,
) -> dict:
    """Test accuracy of one classifier per factor on embeddings plus N(0, σ²I) noise.

    `u` (N, D), `factors` (N, K) value indices. Each classifier has `layers` hidden layers
    of `hidden` ReLU units and a linear output over the factor's values; Adam, minibatches
    of `batch_size`, fresh noise every epoch for training and one noise draw for the test
    split (the held-out `test_fraction`). Inputs are standardised with the noisy training
    statistics (mean, √(var + σ²)); an invertible map, so no information is added.

    Returns {name: {"accuracy", "chance" (1 / number of values), "n_values"}} keyed by
    `factor_names` when given, else by the factor's column index.
    """
    x_np = as_embeddings(u)
    f = as_factors(factors, len(x_np))
    n, d = x_np.shape
    k = f.shape[1]
    names = list(range(k)) if factor_names is None else list(factor_names)
    if len(names) != k:
        raise ValueError(f"got {len(names)} factor names for {k} factor columns; pass one name per column.")
    if not sigma >= 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be a finite noise scale >= 0, got {sigma}.")
    if hidden < 1 or layers < 1 or epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError("hidden, layers, epochs and batch_size must be >= 1 and lr > 0.")
    n_test = int(round(n * test_fraction))
    if not 0 < test_fraction < 1 or n_test < 1 or n - n_test < 2:
        raise ValueError(f"test_fraction {test_fraction} leaves no test or training points out of {n}; use e.g. 0.2 with >= 10 points.")

    # Value indices -> class codes 0..C_k-1 per factor; logits beyond C_k are masked out.
    codes = np.zeros_like(f)
    n_values = np.zeros(k, dtype=np.int64)
    for j in range(k):
        _, codes[:, j] = np.unique(f[:, j], return_inverse=True)
        n_values[j] = codes[:, j].max() + 1
    c_max = int(n_values.max())
    mask = torch.where(torch.arange(c_max)[None, :] < torch.from_numpy(n_values)[:, None], 0.0, -torch.inf)
    mask = mask[:, None, :]  # (K, 1, C_max)

    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=gen)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    x = torch.from_numpy(x_np).float()  # (N, D)
    y = torch.from_numpy(codes)  # (N, K)
    mean = x[train_idx].mean(0)  # (D,)
    scale = (x[train_idx].var(0, unbiased=False) + sigma**2).sqrt().clamp_min(1e-12)  # (D,)

    params = _init_layers(k, [d] + [hidden] * layers + [c_max], gen)
    opt = torch.optim.Adam(params, lr=lr, foreach=True)  # one fused update for all tensors
    n_train = len(train_idx)
    with single_thread():  # tiny layers: one thread is faster (see arrays.single_thread)
        for _ in range(epochs):
            order = train_idx[torch.randperm(n_train, generator=gen)]  # (N_train,)
            noisy = x[order] + sigma * torch.randn(n_train, d, generator=gen)  # fresh each epoch
            noisy = (noisy - mean) / scale
            for start in range(0, n_train, batch_size):
                xb = noisy[start : start + batch_size]  # (B, D)
                yb = y[order[start : start + batch_size]]  # (B, K)
                logits = _forward(params, xb) + mask  # (K, B, C_max)
                # Sum of the K per-factor mean losses: each network gets its own gradient.
                loss = F.cross_entropy(logits.permute(1, 2, 0), yb, reduction="mean") * k
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        with torch.no_grad():
            xt = (x[test_idx] + sigma * torch.randn(n_test, d, generator=gen) - mean) / scale
            pred = (_forward(params, xt) + mask).argmax(-1)  # (K, N_test)
            acc = (pred == y[test_idx].T).float().mean(1).numpy()  # (K,)
    return {
        name: {"accuracy": float(acc[j]), "chance": 1.0 / float(n_values[j]), "n_values": int(n_values[j])}
        for j, name in enumerate(names)
    }

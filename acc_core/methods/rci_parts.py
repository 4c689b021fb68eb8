"""The parts of seed 004's method ("Reconstruction for disentanglement, contrast for
invariance", ICLR 2022 submission) as pure functions, and its k-factor pair sampler.

- Section 3.2, Eq. 3: the closed-form KL between two 1-D Gaussian posteriors, per dimension.
- Eq. 4: the Jensen-Shannon divergence JSD(p, q) = (KL(p || M) + KL(q || M)) / 2 with
  M = (p + q) / 2. M is a two-component mixture, so the JSD of Gaussians has no closed form:
  it is computed by `JS_NODES`-point Gauss-Hermite quadrature of a slowly growing integrand
  (see `gaussian_js`), within 2e-7 of a dense numerical integral (tests/test_rci.py).
- Eq. 5: swap every dimension of z_n except the k whose posteriors differ most; with
  "warm-up by amount" only the `n_swap` most similar dimensions are swapped (n_swap <= |d| - k).
- Eq. 8: the class-mean posterior of z_p (mean of the means, mean of the variances).
- Eq. 9: the supervised contrastive loss of Khosla et al. 2020 (their L_out) on z_p.
- Section 3.2, "Selecting image pairs": x_m has exactly k factor values changed from x_l's,
  only k is known. Here the changed factors are drawn from the scenario's active factors (set
  A's inactive factors are the class, shared by the pair), each changed to a different
  allowed value; everything comes from the step's numpy generator.
"""

from __future__ import annotations

import math

import numpy as np
import torch

JS_NODES = 32  # Gauss-Hermite nodes: within 2e-7 of dense integration (tests/test_rci.py)


def gaussian_kl(mu1, logvar1, mu2, logvar2) -> torch.Tensor:
    """Eq. 3, per dimension: KL(N(mu1, e^lv1) || N(mu2, e^lv2))."""
    return 0.5 * ((logvar1 - logvar2).exp() + (mu1 - mu2).pow(2) * (-logvar2).exp()
                  - 1.0 + logvar2 - logvar1)


def _log_normal(x, mu, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mu).pow(2) * (-logvar).exp())


def gaussian_js(mu1, logvar1, mu2, logvar2, nodes: int = JS_NODES) -> torch.Tensor:
    """Eq. 4, per dimension: JSD between p = N(mu1, e^lv1) and q = N(mu2, e^lv2), in nats.

    With s = log q - log p, M = p (1 + e^s) / 2 and the binary entropy of q / (p + q),
    JSD = log 2 - E_p[(e^s softplus(-s) + softplus(s)) / 2], an expectation of a function that
    grows only like |s| (quadratic in x): Gauss-Hermite quadrature under the narrower of the two
    Gaussians (taken as p, the formula being symmetric) is accurate to 2e-7 at 32 nodes, even
    for standard deviations 1,000 times apart (tests/test_rci.py, against dense integration)."""
    t, w = np.polynomial.hermite.hermgauss(nodes)
    t = torch.as_tensor(t, dtype=mu1.dtype, device=mu1.device)
    w = torch.as_tensor(w / math.sqrt(math.pi), dtype=mu1.dtype, device=mu1.device)
    narrow = logvar1 <= logvar2
    mp, lp = torch.where(narrow, mu1, mu2)[..., None], torch.where(narrow, logvar1, logvar2)[..., None]
    mq, lq = torch.where(narrow, mu2, mu1)[..., None], torch.where(narrow, logvar2, logvar1)[..., None]
    x = mp + math.sqrt(2.0) * (0.5 * lp).exp() * t  # (..., nodes) under the narrower Gaussian
    s = _log_normal(x, mq, lq) - _log_normal(x, mp, lp)
    y = torch.exp(-s.abs())
    # e^s softplus(-s), computed without overflow: log1p(e^-s) / e^-s for s >= 0 (-> 1)
    g = torch.where(s >= 0, torch.where(y > 0, torch.log1p(y) / y.clamp(min=1e-300), torch.ones_like(y)),
                    torch.exp(s.clamp(max=0)) * torch.nn.functional.softplus(-s))
    inside = 0.5 * (g + torch.nn.functional.softplus(s))
    return (math.log(2.0) - (inside * w).sum(-1)).clamp(0.0, math.log(2.0))


DIVERGENCES = {"kl": gaussian_kl, "js": gaussian_js}


def topk_swap_mask(divergence: torch.Tensor, k: torch.Tensor, n_swap: torch.Tensor) -> torch.Tensor:
    """(B, L) per-dimension divergence, (B,) known changed factors k, (B,) dimensions to swap
    -> (B, L) bool, True = swapped: the n_swap dimensions of smallest divergence, never one of
    the k largest (n_swap is clipped to L - k). Ties go to the lower dimension index."""
    B, L = divergence.shape
    order = torch.argsort(divergence, dim=1, stable=True)  # ascending
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(L, device=order.device).expand(B, L))
    limit = torch.minimum(n_swap.to(order.device), (L - k.to(order.device)).clamp(min=0))
    return rank < limit[:, None]


def swap(z_l: torch.Tensor, z_m: torch.Tensor, mask: torch.Tensor):
    """Eq. 5: exchange the masked dimensions of the two codes (B, L) -> (z_l', z_m')."""
    return torch.where(mask, z_m, z_l), torch.where(mask, z_l, z_m)


def class_mean_posterior(mu: torch.Tensor, logvar: torch.Tensor, labels: torch.Tensor):
    """Eq. 8: per sample, the mean of the means and the mean of the variances over the samples
    of its class in the batch. mu, logvar (N, D), labels (N,) -> (mu_bar, logvar_bar) (N, D)."""
    same = (labels[:, None] == labels[None, :]).to(mu.dtype)  # (N, N)
    weights = same / same.sum(1, keepdim=True)
    return weights @ mu, (weights @ logvar.exp()).log()


def supervised_contrastive(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 9 (Khosla et al. 2020, L_out): z (N, D) is L2-normalised; for each anchor i,
    -1/|P(i)| sum_{p in P(i)} log softmax_{a != i}(z_i . z_a / tau)[p]; mean over the anchors
    that have a positive."""
    z = torch.nn.functional.normalize(z.float(), dim=1)
    logits = z @ z.T / temperature  # (N, N)
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    n_pos = positive.sum(1)
    per_anchor = -(log_prob.masked_fill(~positive, 0.0)).sum(1) / n_pos.clamp(min=1)
    has = n_pos > 0
    return per_anchor[has].mean() if has.any() else z.new_zeros(())


# ----- pairs that differ in exactly k factors --------------------------------------------------------
class KFactorPairs:
    """Pairs (x_l, x_m) sharing the class factors, x_m with exactly k of the changeable (active,
    two or more allowed values) factors changed to different allowed values.

    Grid datasets: x_m is the one image with the new values. Labelled datasets: a random image
    with the new labels (its unlabelled style differs too: the paper's unknown nuisance). With
    no changeable factor (digits: the digit is the class) k = 0 and x_m is another image of
    x_l's class."""

    def __init__(self, dataset, class_factors, held_out=None):
        from acc_core.sets import _allowed_values, _check_inactive, _normalise_held_out

        self.ds = dataset
        cls = set(_check_inactive(dataset, tuple(class_factors)))
        self.class_cols = [k for k, n in enumerate(dataset.factor_names) if n in cls]
        held = _normalise_held_out(dataset, held_out)
        self.allowed = _allowed_values(dataset, held)
        self.changeable = [k for k, n in enumerate(dataset.factor_names)
                           if n not in cls and len(self.allowed[k]) >= 2]
        self.strides = dataset._strides
        if not dataset.is_grid:
            labels = dataset.factors(np.arange(len(dataset)))  # (N, K)
            ok = np.ones(len(labels), bool)
            for k, values in enumerate(self.allowed):
                ok &= np.isin(labels[:, k], values)
            self._pool = np.flatnonzero(ok)  # allowed images
            if len(self._pool) < 2:
                raise ValueError("fewer than 2 images are left once the held-out values are removed")
            cols = list(range(dataset.num_factors)) if self.changeable else self.class_cols
            self._key_cols = cols
            key = labels[self._pool][:, cols] @ self.strides[cols]  # (n,) group key
            order = np.argsort(key, kind="stable")
            self._members, self._keys = self._pool[order], key[order]

    @property
    def max_k(self) -> int:
        return len(self.changeable)

    def sample(self, rng: np.random.Generator, n: int, k_max: int):
        """-> (indices (2, n) int64: rows x_l and x_m, k (n,) int64 changed factors)."""
        ds, m = self.ds, len(self.changeable)
        if self.ds.is_grid:
            pos = np.stack([rng.integers(len(a), size=n) for a in self.allowed], axis=1)  # (n, K)
            f_l = np.stack([self.allowed[j][pos[:, j]] for j in range(ds.num_factors)], axis=1)
            first = f_l @ self.strides
        else:
            first = self._pool[rng.integers(len(self._pool), size=n)]
            f_l = ds.factors(first)
        k = rng.integers(1, max(1, min(k_max, m)) + 1, size=n) if m else np.zeros(n, np.int64)
        f_m = f_l.copy()
        if m:
            rank = np.argsort(np.argsort(rng.random((n, m)), axis=1), axis=1)  # random permutation
            for j, col in enumerate(self.changeable):
                a = self.allowed[col]
                here = np.searchsorted(a, f_l[:, col])
                new = a[(here + rng.integers(1, len(a), size=n)) % len(a)]  # never the same value
                f_m[:, col] = np.where(rank[:, j] < k, new, f_l[:, col])
        if self.ds.is_grid:
            second = f_m @ self.strides
        else:
            second = self._draw_member(rng, f_m, first)
        return np.stack([first, second]).astype(np.int64), k.astype(np.int64)

    def _draw_member(self, rng, f_m: np.ndarray, first: np.ndarray) -> np.ndarray:
        cols = self._key_cols
        want = f_m[:, cols] @ self.strides[cols]
        lo = np.searchsorted(self._keys, want, "left")
        hi = np.searchsorted(self._keys, want, "right")
        if (hi <= lo).any():
            raise ValueError("some factor combinations have no image in this dataset, so pairs "
                             "with exactly k changed factors cannot be drawn")
        size = hi - lo
        if not self.changeable:  # k = 0: another image of the class (a different one if there is)
            pick = lo + rng.integers(0, np.maximum(size - 1, 1))
            pick = np.where((self._members[pick] == first) & (size > 1), hi - 1, pick)
            return self._members[pick]
        return self._members[lo + (rng.random(len(want)) * size).astype(np.int64)]


__all__ = ["DIVERGENCES", "KFactorPairs", "class_mean_posterior", "gaussian_js", "gaussian_kl",
           "supervised_contrastive", "swap", "topk_swap_mask"]

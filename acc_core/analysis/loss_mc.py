"""Monte Carlo of the ACC loss for random embeddings against set size and dimension.

The ACC paper appendix D, Figure 9: why ACC isolates more than one factor. Two sets of n
points each are drawn uniformly from the unit hypercube [0, 1]^d ("ideal embeddings
whose factors of variation are randomly distributed from the same distribution") and
the ACC loss is averaged over 10,000 draws. Because the distribution is fixed rather
than learned, the temperature must be optimised numerically for every (n, d) cell (the
figure quotes τ = 0.05 for n = 4, d = 1 and τ = 0.11 for d = 2). For n larger than
O(10) the loss falls as d grows: more independent dimensions make the correspondence
easier, an incentive to embed several factors.

The loss is `acc_core.losses.acc_loss` (one direction, A -> B -> A), applied to a batch of
independent draws with `torch.vmap`.
"""

from __future__ import annotations

import numpy as np
import torch

from acc_core.losses import acc_loss

from acc_core.losses import SIMILARITIES


def _cell_losses(n: int, d: int, temperatures: np.ndarray, *, n_trials: int, similarity: str,
                 scale: float, seed: int, batch_elements: int) -> np.ndarray:
    """Mean loss over n_trials draws for each temperature (same draws for all): (len(temperatures),)."""
    cell_seed = int(np.random.SeedSequence([seed, n, d]).generate_state(1)[0])
    gen = torch.Generator().manual_seed(cell_seed)
    per_batch = max(1, batch_elements // (n * n * d))  # the similarity step holds (T, n, n, d)
    totals = np.zeros(len(temperatures))
    for start in range(0, n_trials, per_batch):
        t = min(per_batch, n_trials - start)
        a = torch.rand(t, n, d, generator=gen) * scale  # (T, n, d) set A
        b = torch.rand(t, n, d, generator=gen) * scale  # (T, n, d) set B
        for j, tau in enumerate(temperatures):
            one_draw = lambda x, y: acc_loss(x, y, similarity=similarity, temperature=float(tau))  # noqa: E731
            totals[j] += float(torch.vmap(one_draw)(a, b).sum())  # vmap: (T,) per-draw losses
    return totals / n_trials


def _default_grid(n: int, d: int, similarity: str, scale: float) -> np.ndarray:
    """25 log-spaced temperatures over three decades around the typical point spacing.

    n points in [0, scale]^d sit about h = scale * n^(-1/d) apart; the optimal τ tracks
    h² for l2sq and h for l2 (the appendix: "roughly scales with the average inter-point
    distance"), so the grid spans [0.01, 10] x that unit. Cosine gets [1e-3, 10].
    """
    h = scale * n ** (-1.0 / d) if scale > 0 else 1.0
    unit = {"l2sq": h * h, "l2": h, "cosine": 1.0}[similarity]
    lo, hi = (1e-3, 10.0) if similarity == "cosine" else (1e-2, 10.0)
    return np.geomspace(lo, hi, 25) * unit


def random_loss_curve(
    set_sizes,
    dims,
    *,
    n_trials: int = 10_000,
    temperature: float | str = 1.0,
    similarity: str = "l2sq",
    scale: float = 1.0,
    seed: int = 0,
    temperature_grid=None,
    return_temperature: bool = False,
    batch_elements: int = 1 << 22,
):
    """Mean ACC loss of random uniform sets: float64 (len(dims), len(set_sizes)).

    Points are uniform in [0, scale]^d (the unit interval for scale = 1, as in the paper),
    both sets of size n. `temperature` is a number, or "optimize": the minimum over
    `temperature_grid` (default: `_default_grid`, around the point spacing of each cell),
    refined by one parabolic step in log τ; every
    temperature sees the same draws. `return_temperature=True` also returns the
    temperatures used, (len(dims), len(set_sizes)). Each (n, d) cell has its own seeded
    stream, so a cell's value does not depend on the other cells asked for.
    """
    sizes = [int(n) for n in np.atleast_1d(set_sizes)]
    dlist = [int(d) for d in np.atleast_1d(dims)]
    if not sizes or not dlist or min(sizes) < 1 or min(dlist) < 1:
        raise ValueError(
            "set_sizes and dims must be non-empty lists of integers >= 1, e.g. [2, 4, 8] and [1, 2, 3]."
        )
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; valid names: {', '.join(SIMILARITIES)}")
    if n_trials < 1 or not scale >= 0:
        raise ValueError(f"n_trials must be >= 1 and scale >= 0, got {n_trials} and {scale}.")
    optimize = isinstance(temperature, str)
    if optimize and temperature != "optimize":
        raise ValueError(f"temperature must be a number > 0 or 'optimize', got {temperature!r}.")
    if not optimize and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if temperature_grid is not None:
        temperature_grid = np.asarray(temperature_grid, dtype=np.float64)
        if temperature_grid.ndim != 1 or temperature_grid.size == 0 or np.any(temperature_grid <= 0):
            raise ValueError("temperature_grid must be a non-empty 1-D list of temperatures > 0.")
    kw = dict(n_trials=n_trials, similarity=similarity, scale=scale, seed=seed, batch_elements=batch_elements)

    loss = np.zeros((len(dlist), len(sizes)))
    taus = np.zeros_like(loss)
    for i, d in enumerate(dlist):
        for j, n in enumerate(sizes):
            if not optimize:
                loss[i, j], taus[i, j] = _cell_losses(n, d, np.array([temperature]), **kw)[0], temperature
                continue
            grid = _default_grid(n, d, similarity, scale) if temperature_grid is None else temperature_grid
            values = _cell_losses(n, d, grid, **kw)  # (G,)
            best = int(values.argmin())
            if 0 < best < len(grid) - 1:  # one parabolic step in log τ through the best three
                x, y = np.log(grid[best - 1 : best + 2]), values[best - 1 : best + 2]
                denom = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
                a2 = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denom
                b1 = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denom
                if a2 > 0:
                    tau = float(np.exp(np.clip(-b1 / (2 * a2), x[0], x[2])))
                    refined = _cell_losses(n, d, np.array([tau]), **kw)[0]
                    if refined < values[best]:
                        loss[i, j], taus[i, j] = refined, tau
                        continue
            loss[i, j], taus[i, j] = values[best], grid[best]
    return (loss, taus) if return_temperature else loss

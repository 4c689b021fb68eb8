"""Set curation: the weak set supervision of ACC (the ACC paper section 3 and Figure 2, the ABC supplement S8.1).

A set holds its *inactive* factors at one randomly drawn value and lets the *active*
factors vary: "for each training step we randomly sample from among its possible values
and hold it fixed across a set of inputs, while sampling uniformly across the remaining
factors to generate a set of size 32" (the ACC paper section 4.1). Set B may be unconstrained
(no inactive factor). A and B get independent samplers and draw independently.

Within a set the active combinations are drawn WITHOUT replacement: two copies of one image
in a set make the cycle back to it ambiguous, so the loss could never be satisfied.

Every set is drawn from a *group* (one value per inactive factor) and a *pool* (the
images of that group):
- grid datasets (Shapes3D): index = group offset + pool offset, both from the index
  strides, O(set size) per set; the 480,000-image dataset is never filtered;
- labelled datasets (MNIST, digits): the images of each group are indexed once, e.g. one
  array per digit; an unconstrained set draws from all images not held out.
Held-out values (the ACC paper section 4.2 holds out the digit 9) are never drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from acc_core.data.base import FactorDataset


def _normalise_held_out(dataset: FactorDataset, held_out) -> dict[str, tuple[int, ...]]:
    held_out = {} if held_out is None else held_out
    if not isinstance(held_out, Mapping):
        raise ValueError("held_out must map factor names to value indices, e.g. {'digit': (9,)}")
    out = {}
    for name, values in held_out.items():
        if name not in dataset.factor_names:
            raise ValueError(
                f"unknown held-out factor {name!r} for dataset {dataset.name!r}; "
                f"valid factors: {', '.join(dataset.factor_names)}"
            )
        size = dataset.factor_sizes[dataset.factor_names.index(name)]
        values = (values,) if isinstance(values, (int, np.integer)) else tuple(values)
        for v in values:
            if not isinstance(v, (int, np.integer)) or not 0 <= v < size:
                raise ValueError(
                    f"held-out value {v!r} does not exist for factor {name!r} "
                    f"(valid value indices are 0..{size - 1})"
                )
        if len(set(values)) == size:
            raise ValueError(
                f"every value of {name!r} is held out, so no image could be drawn; "
                f"keep at least one value"
            )
        out[name] = tuple(sorted({int(v) for v in values}))
    return out


def _allowed_values(dataset: FactorDataset, held_out: dict) -> list[np.ndarray]:
    """Per factor, the value indices that may be drawn (int64 arrays)."""
    return [
        np.setdiff1d(np.arange(size, dtype=np.int64), held_out.get(name, ()))
        for name, size in zip(dataset.factor_names, dataset.factor_sizes)
    ]


def _held_out_phrase(held_out: dict) -> str:
    parts = [f"{name} {', '.join(map(str, v))}" for name, v in held_out.items() if v]
    return f" and {'; '.join(parts)} held out" if parts else ""


def _check_inactive(dataset: FactorDataset, inactive) -> tuple[str, ...]:
    if isinstance(inactive, str) or not isinstance(inactive, Sequence):
        raise ValueError(f"inactive must be a tuple of factor names, e.g. ('wall_hue',), got {inactive!r}")
    for name in inactive:
        if name not in dataset.factor_names:
            raise ValueError(
                f"unknown inactive factor {name!r} for dataset {dataset.name!r}; "
                f"valid factors: {', '.join(dataset.factor_names)}"
            )
    if len(set(inactive)) != len(inactive):
        raise ValueError(f"a factor is listed twice among the inactive factors {tuple(inactive)}")
    # On a grid the factors determine the image; labelled images also differ in unlabelled
    # style, which is what a set of one digit isolates (the ACC paper section 4.2).
    if dataset.is_grid and len(inactive) == dataset.num_factors:
        raise ValueError(
            f"nothing would vary within a set: every factor of {dataset.name!r} "
            f"({', '.join(dataset.factor_names)}) is inactive; leave at least one factor active"
        )
    return tuple(inactive)


def _labelled_groups(dataset: FactorDataset, inactive, allowed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled datasets: (members, starts, sizes): images sorted by group, group slices."""
    labels = dataset.factors(np.arange(len(dataset)))  # (N, K) int64
    keep = np.ones(len(labels), dtype=bool)
    for k, values in enumerate(allowed):
        keep &= np.isin(labels[:, k], values)
    candidates = np.flatnonzero(keep)  # (n,) images not held out
    cols = [dataset.factor_names.index(name) for name in inactive]
    if not cols:  # unconstrained: one group of everything not held out
        return candidates, np.zeros(1, np.int64), np.asarray([len(candidates)], np.int64)
    strides = np.cumprod([1] + [dataset.factor_sizes[c] for c in cols[:-1]])
    key = labels[candidates][:, cols] @ strides  # (n,) joint inactive value
    order = np.argsort(key, kind="stable")
    _, starts, sizes = np.unique(key[order], return_index=True, return_counts=True)
    return candidates[order], starts.astype(np.int64), sizes.astype(np.int64)


def available_images(dataset: FactorDataset, inactive=(), held_out=None) -> int:
    """How many distinct images one set can draw from (the smallest group for labels)."""
    inactive = _check_inactive(dataset, inactive)
    allowed = _allowed_values(dataset, _normalise_held_out(dataset, held_out))
    if dataset.is_grid:
        return int(np.prod([len(a) for n, a in zip(dataset.factor_names, allowed) if n not in inactive]))
    _, _, sizes = _labelled_groups(dataset, inactive, allowed)
    return int(sizes.min()) if sizes.size else 0


def validate_sets(dataset: FactorDataset, inactive, set_size: int, held_out=None) -> None:
    """Raise ValueError with one clear sentence when such sets cannot be drawn."""
    inactive = _check_inactive(dataset, inactive)
    held = _normalise_held_out(dataset, held_out)
    if isinstance(set_size, bool) or not isinstance(set_size, (int, np.integer)) or set_size < 2:
        raise ValueError(f"set size must be an integer >= 2, got {set_size!r}")
    available = available_images(dataset, inactive, held)
    if set_size > available:
        fixed = f" with {', '.join(inactive)} held fixed" if inactive else ""
        smallest = "" if dataset.is_grid or not inactive else " (in the smallest group)"
        raise ValueError(
            f"set size {set_size} > {available} images{smallest}{fixed}{_held_out_phrase(held)}; "
            f"use a smaller set or fewer inactive factors"
        )


def _has_duplicate(rows: np.ndarray) -> np.ndarray:
    """(t, s) -> (t,) bool: does a row hold some value twice?"""
    srt = np.sort(rows, axis=1)
    return (srt[:, 1:] == srt[:, :-1]).any(axis=1)


def _uniform_ints(rng: np.random.Generator, high, shape) -> np.ndarray:
    """Integers in [0, high): floor(U * high) with U on a 2**-53 grid, so the bias is below
    high / 2**53 (< 1e-10 for pools up to 480,000); several times cheaper per call than
    rng.integers, which matters when a training step draws one set at a time."""
    return (rng.random(shape) * high).astype(np.int64)


def _distinct_positions(rng: np.random.Generator, pool_size, n_sets: int, set_size: int) -> np.ndarray:
    """(n_sets, set_size) int64 positions in [0, pool size), distinct within a row, uniform.

    `pool_size` is one int shared by all rows (grids) or an (n_sets,) array (labels).
    Large pools (>= set_size**2, so a birthday collision is unlikely): draw with replacement
    and redraw only the rows holding a duplicate, which is uniform over ordered samples
    without replacement. Small pools: the first set_size entries of a random permutation
    (argsort of uniform keys; keys beyond a row's pool are pushed last).
    """
    if np.ndim(pool_size) == 0:
        if pool_size < set_size * set_size:
            return np.argsort(rng.random((n_sets, int(pool_size))), axis=1)[:, :set_size]
        high = pool_size
    else:
        sizes = np.asarray(pool_size, dtype=np.int64)  # (n,)
        small = sizes < set_size * set_size
        if small.any():
            out = np.empty((n_sets, set_size), dtype=np.int64)
            keys = rng.random((int(small.sum()), int(sizes[small].max())))  # (k, max pool)
            keys[np.arange(keys.shape[1])[None, :] >= sizes[small][:, None]] = 2.0
            out[small] = np.argsort(keys, axis=1)[:, :set_size]
            if not small.all():
                out[~small] = _distinct_positions(rng, sizes[~small], int((~small).sum()), set_size)
            return out
        high = sizes[:, None]  # (n, 1)
    draw = _uniform_ints(rng, high, (n_sets, set_size))  # (n, s)
    dup = _has_duplicate(draw)
    while dup.any():
        rows = np.flatnonzero(dup)
        draw[rows] = _uniform_ints(rng, high if np.ndim(high) == 0 else high[rows], (len(rows), set_size))
        dup[rows] = _has_duplicate(draw[rows])
    return draw


class SetSampler:
    """Draws sets of image indices with the given inactive factors held fixed per set."""

    def __init__(self, dataset: FactorDataset, inactive: tuple[str, ...] = (), set_size: int = 32, *, held_out=None):
        validate_sets(dataset, inactive, set_size, held_out)
        self.dataset = dataset
        self.inactive = tuple(inactive)
        self.set_size = int(set_size)
        self.held_out = _normalise_held_out(dataset, held_out)
        allowed = _allowed_values(dataset, self.held_out)
        if dataset.is_grid:
            strides = dataset._strides  # (K,)
            ina = [k for k, n in enumerate(dataset.factor_names) if n in self.inactive]
            act = [k for k in range(dataset.num_factors) if k not in ina]

            def offsets(factors):  # every combination of allowed values -> sum of value * stride
                acc = np.zeros(1, dtype=np.int64)
                for k in factors:  # (m,) -> (m * len(allowed[k]),)
                    acc = (acc[:, None] + allowed[k][None, :] * strides[k]).reshape(-1)
                return acc

            # (G,) one offset per inactive value combination; (M,) one per active combination.
            # M <= 480,000 for Shapes3D, built once; drawing is then a gather.
            self._group_offsets = offsets(ina) if ina else np.zeros(1, np.int64)
            self._pool = offsets(act)
            self._pool_sizes = np.full(len(self._group_offsets), len(self._pool), dtype=np.int64)
        else:
            self._members, self._group_starts, self._pool_sizes = _labelled_groups(dataset, self.inactive, allowed)

    @property
    def num_groups(self) -> int:
        """How many value combinations of the inactive factors a set can be drawn from."""
        return len(self._pool_sizes)

    def sample(self, rng: np.random.Generator, n_sets: int = 1) -> np.ndarray:
        """(n_sets, set_size) int64 image indices; each row is one set."""
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy Generator, e.g. np.random.default_rng(seed)")
        if n_sets < 0:
            raise ValueError(f"n_sets must be >= 0, got {n_sets}")
        group = _uniform_ints(rng, self.num_groups, n_sets)  # (n,) one inactive value per set
        if self.dataset.is_grid:  # every group has the same pool: the active combinations
            pos = _distinct_positions(rng, len(self._pool), n_sets, self.set_size)  # (n, s)
            return self._group_offsets[group][:, None] + self._pool[pos]
        pos = _distinct_positions(rng, self._pool_sizes[group], n_sets, self.set_size)  # (n, s)
        return self._members[self._group_starts[group][:, None] + pos]


def pair_samplers(dataset: FactorDataset, config) -> tuple[SetSampler, SetSampler]:
    """The independent samplers for sets A and B of a RunConfig (acc_core.config)."""
    held_out = config.data.held_out
    size = config.train.set_size
    return (
        SetSampler(dataset, config.set_a.inactive, size, held_out=held_out),
        SetSampler(dataset, config.set_b.inactive, size, held_out=held_out),
    )


def filtering_baseline_sample(
    dataset: FactorDataset, inactive, set_size: int, rng: np.random.Generator, *, labels=None
) -> np.ndarray:
    """One set the way the original code drew it, for the benchmark only.

    Draw a value per inactive factor, filter all N label rows with a boolean mask, then
    choose set_size of the survivors: O(N) per set. `labels` (N, K) may be precomputed.
    """
    labels = dataset.factors(np.arange(len(dataset))) if labels is None else labels
    mask = np.ones(len(labels), dtype=bool)
    for name in inactive:
        k = dataset.factor_index(name)
        mask &= labels[:, k] == rng.integers(dataset.factor_sizes[k])
    return rng.choice(np.flatnonzero(mask), size=set_size, replace=False)  # (set_size,)

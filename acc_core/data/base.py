"""The factor dataset contract (DESIGN.md, "Contracts").

A `FactorDataset` is a collection of images, each labelled by one value index per
generative factor. Two kinds exist:

- grid datasets (Shapes3D): every combination of factor values is exactly one image, and
  the index is `sum_i f_i * prod_{j>i} n_j` (the real file's layout, last factor fastest);
- labelled datasets (MNIST, digits): images carry labels, several images share a label.
"""

from __future__ import annotations

import numpy as np


class DataError(RuntimeError):
    """A dataset is missing, corrupt or inconsistent; the message says what to do."""


class FactorDataset:
    """Base class. Subclasses set the attributes in `__init__` and implement `_images`."""

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_values: tuple[np.ndarray, ...]  # the real values, e.g. hue 0.0..0.9
    value_labels: tuple[tuple[str, ...], ...]  # for display, e.g. ("cube", "cylinder", ...)
    image_shape: tuple[int, int, int]  # (H, W, C)
    is_grid: bool = True

    # ----- sizes and factors -------------------------------------------------------------
    def __len__(self) -> int:
        if self.is_grid:
            return int(np.prod(self.factor_sizes))
        return int(len(self._labels))

    @property
    def num_factors(self) -> int:
        return len(self.factor_names)

    def factor_index(self, name: str) -> int:
        try:
            return self.factor_names.index(name)
        except ValueError:
            raise ValueError(
                f"unknown factor {name!r} for dataset {self.name!r}; "
                f"valid factors: {', '.join(self.factor_names)}"
            ) from None

    @property
    def _strides(self) -> np.ndarray:
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {self.name!r} with {len(self)} images")
        return idx

    def factors(self, indices) -> np.ndarray:
        """(n,) image indices -> (n, K) int64 factor value indices."""
        idx = self._check_indices(indices)
        if self.is_grid:
            sizes = np.asarray(self.factor_sizes, dtype=np.int64)
            return (idx[:, None] // self._strides[None, :]) % sizes[None, :]
        return self._labels[idx]

    def index_of(self, factors) -> np.ndarray:
        """(n, K) factor value indices -> (n,) image indices.

        For grid datasets this is exact. For labelled datasets several images share the same
        factors; the first image with those factors is returned.
        """
        f = np.asarray(factors, dtype=np.int64)
        if f.ndim == 1:
            f = f[None, :]
        if f.shape[1] != self.num_factors:
            raise ValueError(f"expected {self.num_factors} factors per row, got {f.shape[1]}")
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        if (f < 0).any() or (f >= sizes[None, :]).any():
            raise ValueError(f"factor value index out of range; sizes are {self.factor_sizes}")
        if self.is_grid:
            return f @ self._strides
        keys = self._labels @ self._strides
        first = {}
        for i, k in enumerate(keys.tolist()):
            first.setdefault(k, i)
        wanted = (f @ self._strides).tolist()
        missing = [w for w in wanted if w not in first]
        if missing:
            raise ValueError(f"no image in {self.name!r} has the requested factor values")
        return np.asarray([first[w] for w in wanted], dtype=np.int64)

    # ----- images ------------------------------------------------------------------------
    def images(self, indices) -> np.ndarray:
        """(n,) image indices -> uint8 (n, H, W, C)."""
        idx = self._check_indices(indices)
        out = self._images(idx)
        assert out.dtype == np.uint8 and out.shape[1:] == tuple(self.image_shape)
        return out

    def _images(self, idx: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "name": self.name,
            "size": len(self),
            "image_shape": list(self.image_shape),
            "factors": [
                {"name": n, "size": s, "labels": list(lab)}
                for n, s, lab in zip(self.factor_names, self.factor_sizes, self.value_labels)
            ],
        }

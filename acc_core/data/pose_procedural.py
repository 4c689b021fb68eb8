"""The `pose-procedural` data source: synthetic and "real" views of parametric objects.

Stands in for the ACC paper section 4.3 data offline: ShapeNet renderings grouped by 3D
model (the synthetic domain, with ground-truth pose) and unlabelled real photos (CompCars,
Cars196, Pascal3D+), which cannot be downloaded here. `acc_core.data.pose_render` draws both
domains of the same objects; see its docstring for what differs between them.

Factors (a grid, last factor fastest, like the other grid sources):
    category   car, chair
    instance   12 per category (own proportions and colours); 0..9 form the synthetic
               dictionary of Table 1 (10 x 36 x 5 = 1,800 images per category), 10..11
               are held out as the real-domain test queries
    azimuth    36 values, 0..350 degrees (the full circle)
    elevation  5 values, 0 .. the category's cap (0.5 rad cars, 1.3 rad chairs; appendix A.3);
               factor values are fractions of the cap, `poses()` gives radians
    domain     synthetic, real
Images are 64x64 by default and are kept in memory once drawn (8,640 at most, 106 MB at
64x64), so training and evaluation render each image once per process.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from acc_core.data.base import FactorDataset
from acc_core.data.pose_render import (AZIMUTHS_DEG, CATEGORIES, DOMAINS, ELEVATION_CAP_RAD,
                                       ELEVATION_FRACTIONS, FACTOR_NAMES, FACTOR_SIZES,
                                       pose_radians, render)

NAME = "pose-procedural"
DICTIONARY_INSTANCES = tuple(range(10))  # Table 1's synthetic dictionary
TEST_INSTANCES = (10, 11)  # real-domain queries never seen in training


class ProceduralPose(FactorDataset):
    """Cars and chairs over the upper hemisphere, in a synthetic and a real domain."""

    def __init__(self, root=None, size: int = 64):
        if int(size) != size or size < 8:
            raise ValueError(f"image size must be an integer of at least 8, got {size!r}")
        self.name, self.size = NAME, int(size)
        self.factor_names, self.factor_sizes = FACTOR_NAMES, FACTOR_SIZES
        self.factor_values = (np.arange(len(CATEGORIES)), np.arange(FACTOR_SIZES[1]),
                              AZIMUTHS_DEG.copy(), ELEVATION_FRACTIONS.copy(),
                              np.arange(len(DOMAINS)))
        self.value_labels = (CATEGORIES, tuple(str(i) for i in range(FACTOR_SIZES[1])),
                             tuple(f"{a:.0f}°" for a in AZIMUTHS_DEG),
                             tuple(f"{e:.2f} cap" for e in ELEVATION_FRACTIONS), DOMAINS)
        self.image_shape = (self.size, self.size, 3)
        self.is_grid = True
        self.elevation_caps = dict(ELEVATION_CAP_RAD)
        self._memo = np.zeros((len(self), self.size, self.size, 3), dtype=np.uint8)
        self._have = np.zeros(len(self), dtype=bool)
        self._lock = threading.Lock()  # the app's server is threaded

    def poses(self, indices) -> np.ndarray:
        """(n,) image indices -> (n, 2) float64 (azimuth, elevation) in radians."""
        return pose_radians(self.factors(indices))

    def _images(self, idx: np.ndarray) -> np.ndarray:
        with self._lock:
            missing = np.unique(idx[~self._have[idx]])
            if missing.size:
                self._memo[missing] = render(self.factors(missing), self.size).numpy()
                self._have[missing] = True
            return self._memo[idx]

    def images_tensor(self, indices) -> torch.Tensor:
        return torch.from_numpy(self.images(indices))

    def select(self, *, category=None, instances=None, domain=None) -> np.ndarray:
        """Sorted image indices with the given category (name or index), instances, domain."""
        f = self.factors(np.arange(len(self)))
        keep = np.ones(len(f), dtype=bool)
        if category is not None:
            keep &= f[:, 0] == (CATEGORIES.index(category) if isinstance(category, str) else category)
        if instances is not None:
            keep &= np.isin(f[:, 1], list(instances))
        if domain is not None:
            keep &= f[:, 4] == (DOMAINS.index(domain) if isinstance(domain, str) else domain)
        return np.flatnonzero(keep).astype(np.int64)


def load_pose_procedural(root=None, *, size: int = 64) -> ProceduralPose:
    """The `pose-procedural` source (nothing on disk; `root` is accepted and unused)."""
    return ProceduralPose(root, size)

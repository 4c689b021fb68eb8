"""Colored digits: scikit-learn's bundled digits recoloured into the Colored-MNIST of seed 004
(section 4.1): "the background color is chosen from 3 colors and digit color is chosen from
other 6 colors. In test, we set the background color into 3 new colors".

A derived data source, built from `digits` with no download. Every one of the 1,797 digit
images appears in every (digit colour, background colour) combination: 6 digit colours x 6
background colours (the first 3 for training, the last 3 as the paper's new test colours;
hold them out in the run's data config: `held_out={"background_color": (3, 4, 5)}`), so
64,692 images of 28x28x3. A pixel of grey level g in [0, 1] becomes
g * digit_colour + (1 - g) * background_colour. Factors: `digit` (10), `digit_color` (6),
`background_color` (6); the style of the handwriting is unlabelled, as in MNIST.

Index layout: index = base * 36 + digit_color * 6 + background_color, with `base` the image's
index in `digits`; images are coloured on demand (a few microseconds each).
"""

from __future__ import annotations

import numpy as np

from acc_core.data.base import FactorDataset

# 12 distinct colours (RGB in [0, 1]): bright digit colours, dark backgrounds.
DIGIT_COLORS = (("red", (1.0, 0.15, 0.1)), ("orange", (1.0, 0.6, 0.0)), ("yellow", (1.0, 0.95, 0.1)),
                ("green", (0.2, 0.9, 0.2)), ("cyan", (0.1, 0.85, 1.0)), ("pink", (1.0, 0.45, 0.85)))
BACKGROUND_COLORS = (("navy", (0.05, 0.05, 0.4)), ("maroon", (0.4, 0.02, 0.05)),
                     ("dark green", (0.0, 0.3, 0.05)),  # training backgrounds
                     ("purple", (0.3, 0.0, 0.4)), ("teal", (0.0, 0.3, 0.32)),
                     ("olive", (0.32, 0.3, 0.0)))  # the paper's "3 new colors" for testing
TEST_BACKGROUNDS = (3, 4, 5)


class ColoredDigits(FactorDataset):
    is_grid = False

    def __init__(self, gray: np.ndarray, digits: np.ndarray):
        # gray (n, 28, 28) uint8, digits (n,) 0..9
        self.name = "digits-colored"
        nd, nb = len(DIGIT_COLORS), len(BACKGROUND_COLORS)
        self.factor_names = ("digit", "digit_color", "background_color")
        self.factor_sizes = (10, nd, nb)
        self.factor_values = tuple(np.arange(s, dtype=np.int64) for s in self.factor_sizes)
        self.value_labels = (tuple(str(d) for d in range(10)), tuple(n for n, _ in DIGIT_COLORS),
                             tuple(n for n, _ in BACKGROUND_COLORS))
        self.image_shape = (gray.shape[1], gray.shape[2], 3)
        self._gray = gray.astype(np.float32) / 255.0  # (n, H, W)
        self._fg = np.asarray([c for _, c in DIGIT_COLORS], np.float32)  # (6, 3)
        self._bg = np.asarray([c for _, c in BACKGROUND_COLORS], np.float32)  # (6, 3)
        n = len(gray)
        combo = np.arange(nd * nb)
        self._labels = np.stack([np.repeat(np.asarray(digits, np.int64), nd * nb),
                                 np.tile(combo // nb, n), np.tile(combo % nb, n)], axis=1)  # (36n, 3)

    def _images(self, idx: np.ndarray) -> np.ndarray:
        nc = len(DIGIT_COLORS) * len(BACKGROUND_COLORS)
        base, combo = idx // nc, idx % nc
        g = self._gray[base][..., None]  # (m, H, W, 1)
        fg = self._fg[combo // len(BACKGROUND_COLORS)][:, None, None, :]  # (m, 1, 1, 3)
        bg = self._bg[combo % len(BACKGROUND_COLORS)][:, None, None, :]
        return np.round((g * fg + (1.0 - g) * bg) * 255.0).astype(np.uint8)  # (m, H, W, 3)


def load_digits_colored(root=None) -> ColoredDigits:
    """The colored digits (`root` is unused: they are derived from scikit-learn's digits)."""
    from acc_core.data import load

    base = load("digits")
    return ColoredDigits(base._pixels, base._labels[:, 0])

"""Per-image style measures of handwritten digits, for colouring embeddings by what the ACC
paper (section 4.2, Figure 4) says the digit-style embedding fans out by: stroke thickness
and slant. Pure functions of uint8 images (N, H, W[, 1]); no labels are involved.

- `stroke_thickness`: ink area divided by the length of the stroke, in pixels, with the
  stroke length estimated as half the ink's boundary (a thin line has two edges): about the
  pen's width, whatever the digit.
- `slant`: the shear of the ink's second moments, mu11 / mu02 (x against y, y pointing up):
  0 for an upright stroke, positive when the top leans right.
"""

from __future__ import annotations

import numpy as np

INK = 0.5  # a pixel is ink above half intensity


def _ink(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 1), got shape {x.shape}")
    return x / 255.0 > INK  # (N, H, W) bool


def stroke_thickness(images) -> np.ndarray:
    """(N,) float: ink area / (boundary / 2), in pixels."""
    ink = _ink(images)
    area = ink.sum((1, 2)).astype(np.float64)
    pad = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    edges = (pad[:, 1:, :] != pad[:, :-1, :]).sum((1, 2)) + (pad[:, :, 1:] != pad[:, :, :-1]).sum((1, 2))
    return np.where(edges > 0, area / np.maximum(edges / 2.0, 1.0), 0.0)


def slant(images) -> np.ndarray:
    """(N,) float: mu11 / mu02 of the ink (positive: the top leans right)."""
    ink = _ink(images).astype(np.float64)
    n, h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w]
    yy = (h - 1 - yy).astype(np.float64)  # y up
    m = np.maximum(ink.sum((1, 2)), 1.0)
    cx = (ink * xx).sum((1, 2)) / m
    cy = (ink * yy).sum((1, 2)) / m
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    mu11 = (ink * dx * dy).sum((1, 2)) / m
    mu02 = (ink * dy * dy).sum((1, 2)) / m
    return np.where(mu02 > 0, mu11 / np.maximum(mu02, 1e-9), 0.0)


MEASURES = {"stroke thickness": stroke_thickness, "slant": slant}

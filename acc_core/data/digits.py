"""scikit-learn's bundled handwritten digits as a labelled factor dataset (the ACC paper section 4.2).

The offline default for digit style isolation: 1,797 images of 8x8 pixels with values
0..16 (the UCI optical digits, shipped inside scikit-learn, so no download). They are
brought to MNIST's framing, a digit in a 20x20 box centred in 28x28 with a 4-pixel black
margin (bicubic upsampling, rescaled to 0..255 uint8), so the MNIST encoder of the ABC supplement
Table S4 sees them as it sees MNIST. One factor, `digit`, is held fixed within a set to
isolate style (stroke width, slant) as the paper does with MNIST.
"""

from __future__ import annotations

import numpy as np

from acc_core.data.base import FactorDataset

DIGIT_SIZE = 28  # MNIST's side, the input of the ABC supplement Table S4
DIGIT_BOX = 20  # MNIST size-normalises each digit into a 20x20 box centred in 28x28


class DigitDataset(FactorDataset):
    """Labelled digit images with one factor, `digit` (shared by the MNIST and digits sources)."""

    is_grid = False

    def __init__(self, name: str, images: np.ndarray, digits: np.ndarray):
        # images (n, 28, 28) uint8, digits (n,) integers 0..9
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (n, H, W), got {images.dtype} {images.shape}")
        if len(images) != len(digits):
            raise ValueError(f"{len(images)} images but {len(digits)} labels")
        self.name = name
        self.factor_names = ("digit",)
        self.factor_sizes = (10,)
        self.factor_values = (np.arange(10, dtype=np.int64),)
        self.value_labels = (tuple(str(d) for d in range(10)),)
        self.image_shape = (images.shape[1], images.shape[2], 1)
        self._pixels = images  # (n, H, W) uint8
        self._labels = np.asarray(digits, dtype=np.int64).reshape(-1, 1)  # (n, 1)

    def _images(self, idx: np.ndarray) -> np.ndarray:
        return self._pixels[idx][..., None]  # (n, H, W, 1)


def upsample_digits(images: np.ndarray, size: int = DIGIT_SIZE, box: int = DIGIT_BOX) -> np.ndarray:
    """(n, 8, 8) float 0..16 -> (n, size, size) uint8 0..255: bicubic to (box, box), centred.

    The 8x8 digits fill their frame; upsampling into MNIST's 20x20 box with a black margin
    keeps strokes off the border as in MNIST. Bicubic keeps strokes smooth; it overshoots
    slightly at edges, hence the clip.
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None] / 16.0  # (n, 1, 8, 8)
    y = F.interpolate(x, size=(box, box), mode="bicubic", align_corners=False)  # (n, 1, box, box)
    margin = (size - box) // 2
    y = F.pad(y, (margin, size - box - margin, margin, size - box - margin))  # (n, 1, size, size)
    return (y[:, 0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()  # (n, size, size)


def _digits_csv():
    """The path of scikit-learn's `digits.csv.gz`, found without importing scikit-learn (3 s)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def load_digits(root=None) -> DigitDataset:
    """The 1,797 bundled digits at 28x28. `root` is unused: the data ships with scikit-learn."""
    path = _digits_csv()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)  # (1797, 65): pixels, digit
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    else:  # an unusual scikit-learn layout: use its loader
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        images, target = bunch.images, bunch.target
    return DigitDataset("digits", upsample_digits(images), target)

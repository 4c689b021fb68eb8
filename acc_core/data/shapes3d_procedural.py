"""The `shapes3d-procedural` data source: Shapes3D re-rendered, no download needed.

The ACC paper section 4.1 uses Shapes3D (Burgess & Kim 2018). This source has the real file's
six factors, sizes, values and index layout (orientation fastest) and draws images on the
fly with `acc_core.data.shapes3d_render`, deterministically. `materialise` can write all
480,000 images into an on-disk uint8 cache that later loads memory-map instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from acc_core.data.base import DataError, FactorDataset
from acc_core.data.shapes3d_render import (CHUNK, FACTOR_NAMES, FACTOR_SIZES, HUES,
                                           ORIENTATIONS, SCALES, SHAPES, render)
from acc_core.paths import atomic_path, data_dir

NAME = "shapes3d-procedural"
RENDER_STEP = 16 * CHUNK  # images per write while materialising


def grid_factors(indices) -> np.ndarray:
    """(n,) image indices -> (n, 6) factor value indices, the real file's layout."""
    sizes = np.asarray(FACTOR_SIZES, dtype=np.int64)
    strides = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])
    return (np.asarray(indices, dtype=np.int64)[:, None] // strides) % sizes


def cache_path(root=None, size: int = 64) -> Path:
    """Where `materialise` writes and loads look: <data dir>/shapes3d-procedural/."""
    return Path(root if root is not None else data_dir()) / NAME / f"images_{size}.npy"


def open_cache(path, size: int = 64) -> np.ndarray:
    """Memory-map a materialised cache, checking it holds every image at this size."""
    expected = (int(np.prod(FACTOR_SIZES)), size, size, 3)
    redo = f"delete {path} and re-render it with `acc data render {NAME}`"
    try:
        images = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"the image cache {path} is unreadable ({e}); {redo}") from None
    if images.dtype != np.uint8 or images.shape != expected:
        raise DataError(f"the image cache {path} holds {images.dtype} {images.shape}, "
                        f"expected uint8 {expected}; {redo}")
    return images


class ProceduralShapes3D(FactorDataset):
    """Shapes3D drawn on the fly (or read from a materialised cache when one exists)."""

    def __init__(self, root=None, size: int = 64):
        if int(size) != size or size < 4:
            raise ValueError(f"image size must be an integer of at least 4, got {size!r}")
        self.name, self.size = NAME, int(size)
        self.factor_names, self.factor_sizes = FACTOR_NAMES, FACTOR_SIZES
        self.factor_values = (HUES, HUES, HUES, SCALES, np.arange(len(SHAPES)), ORIENTATIONS)
        hue_labels = tuple(f"{h:.1f}" for h in HUES)
        self.value_labels = (hue_labels, hue_labels, hue_labels,
                             tuple(f"{s:.2f}" for s in SCALES), SHAPES,
                             tuple(f"{o:.1f}°" for o in ORIENTATIONS))
        self.image_shape = (self.size, self.size, 3)
        self.is_grid = True
        self.cache_file = cache_path(root, self.size)
        self._cache = open_cache(self.cache_file, self.size) if self.cache_file.exists() else None

    @property
    def materialised(self) -> bool:
        return self._cache is not None

    def _images(self, idx: np.ndarray) -> np.ndarray:
        if self._cache is not None:
            return np.asarray(self._cache[idx])
        return render(self.factors(idx), self.size).numpy()

    def images_tensor(self, indices) -> torch.Tensor:
        """Like `images` but returns torch.uint8 (n, H, W, 3), skipping a numpy round trip."""
        idx = self._check_indices(indices)
        if self._cache is not None:
            return torch.from_numpy(np.asarray(self._cache[idx]))
        return render(self.factors(idx), self.size)


def load_procedural(root=None, *, size: int = 64) -> ProceduralShapes3D:
    """The `shapes3d-procedural` source; `root` overrides the data dir (for the cache)."""
    return ProceduralShapes3D(root, size)


def materialise(path=None, *, size: int = 64, progress: bool = True,
                limit: int | None = None) -> Path:
    """Render every image into an on-disk uint8 .npy that later loads memory-map.

    Written to a temporary file and renamed at the end, so an interrupted render leaves
    nothing behind. `limit` renders only the first `limit` images (a quick check; loads
    accept only the complete cache). Returns the path written.
    """
    path = Path(path) if path is not None else cache_path(None, size)
    total = int(np.prod(FACTOR_SIZES))
    n = total if limit is None else max(0, min(int(limit), total))
    start_time, tty, shown = time.monotonic(), sys.stderr.isatty(), 0
    with atomic_path(path) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(n, size, size, 3))
        for start in range(0, n, RENDER_STEP):
            stop = min(start + RENDER_STEP, n)
            images[start:stop] = render(grid_factors(np.arange(start, stop)), size).numpy()
            if progress and (tty or stop * 10 // n > shown):  # one line per 10% in logs
                shown = stop * 10 // n
                rate = stop / max(time.monotonic() - start_time, 1e-9)
                line = f"rendering {NAME} {size}x{size}: {stop}/{n} images ({rate:,.0f}/s)"
                print("\r" + line if tty else line, end="" if tty else "\n", file=sys.stderr,
                      flush=True)
        images.flush()
        del images
    if progress:
        print(("\n" if tty else "") + f"wrote {path}", file=sys.stderr)
    return path


def main(argv=None) -> int:
    """`python -m acc_core.data.shapes3d_procedural [--size 64] [--path FILE]`."""
    import argparse

    ap = argparse.ArgumentParser(description=materialise.__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--path", default=None, help="output .npy (default: the data dir)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    materialise(args.path, size=args.size, progress=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The real Shapes3D file (`3dshapes.h5`, Burgess & Kim 2018) as a grid factor dataset.

The ACC paper section 4.1 trains on every combination of six factors: floor_hue, wall_hue,
object_hue (10 values each), scale (8), shape (4), orientation (15); 480,000 images of
64x64x3, index = sum_i f_i * prod_{j>i} n_j (orientation fastest), the same layout as the
procedural source. The h5 stores the images gzip-compressed in chunks, too slow for random
access during training, so the first load converts them once into a memory-mappable uint8
.npy beside the file (written to a temporary file and renamed, so an interrupted conversion
leaves nothing); later loads memmap it. The 267 MB sha256 is checked at that conversion and
on `verify=True`, not on every load.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from acc_core.data.base import DataError, FactorDataset
from acc_core.data.download import Progress, check_file
from acc_core.paths import atomic_write_json
from acc_core.paths import atomic_path, data_dir

FILE_NAME = "3dshapes.h5"
FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
FACTOR_VALUES = (
    np.round(np.arange(10) / 10, 1),  # hues 0.0 .. 0.9, as stored in the file
    np.round(np.arange(10) / 10, 1),
    np.round(np.arange(10) / 10, 1),
    np.linspace(0.75, 1.25, 8),  # scale
    np.arange(4, dtype=np.float64),  # shape: cube, cylinder, sphere, capsule
    np.linspace(-30.0, 30.0, 15),  # orientation: camera azimuth in degrees
)
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
IMAGE_SHAPE = (64, 64, 3)
CONVERT_BATCH = 4000  # images per read while converting: 4000 * 12 KiB = 49 MB in memory


def value_labels(sizes=FACTOR_SIZES) -> tuple[tuple[str, ...], ...]:
    hue = tuple(f"{v:.1f}" for v in FACTOR_VALUES[0])
    labels = (
        hue,
        hue,
        hue,
        tuple(f"{v:.2f}" for v in FACTOR_VALUES[3]),
        SHAPE_NAMES,
        tuple(f"{v:.1f}°" for v in FACTOR_VALUES[5]),
    )
    return tuple(lab[:n] for lab, n in zip(labels, sizes))


class Shapes3D(FactorDataset):
    """The real file's images, memory-mapped from the converted .npy."""

    is_grid = True

    def __init__(self, path: Path, cache_path: Path, images: np.ndarray, sizes=FACTOR_SIZES):
        self.name = "shapes3d"
        self.path, self.cache_path = path, cache_path
        self.factor_names = FACTOR_NAMES
        self.factor_sizes = tuple(sizes)
        self.factor_values = tuple(v[:n] for v, n in zip(FACTOR_VALUES, sizes))
        self.value_labels = value_labels(sizes)
        self.image_shape = IMAGE_SHAPE
        self._pixels = images  # (N, 64, 64, 3) uint8 memmap

    def _images(self, idx: np.ndarray) -> np.ndarray:
        # Sorted reads touch the memmap in file order; then undo the sort.
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx), *IMAGE_SHAPE), dtype=np.uint8)
        out[order] = self._pixels[idx[order]]
        return out


def _file_spec() -> dict:
    from acc_core.data import manifest

    return manifest("shapes3d")["files"][0]


def resolve_path(root=None) -> Path:
    """`root` is the .h5 itself or a directory holding it; default data_dir()/shapes3d/."""
    if root is None:
        return data_dir() / "shapes3d" / FILE_NAME
    root = Path(root).expanduser()
    return root / FILE_NAME if root.is_dir() else root


def load_shapes3d(root=None, *, verify: bool = False, progress: bool = True, _factor_sizes=None) -> Shapes3D:
    """Load the real Shapes3D, converting the h5 to a memmapped .npy on first use.

    `verify=True` checks the h5's size and sha256 against the manifest even when the .npy
    exists. `_factor_sizes` is a testing hook only: it accepts a small file written in the
    same layout with fewer values per factor; the default insists on all 480,000 images.
    """
    sizes = tuple(FACTOR_SIZES if _factor_sizes is None else _factor_sizes)
    official = sizes == FACTOR_SIZES
    path = resolve_path(root)
    if not path.is_file():
        spec = _file_spec()
        raise DataError(
            f"Shapes3D file not found at {path}; download {spec['urls'][0]} "
            f"({spec['size']:,} bytes, sha256 {spec['sha256']}) and put it at "
            f"{data_dir() / 'shapes3d' / FILE_NAME} (the data dir is set by ACC_DATA_DIR) "
            f"or pass its path"
        )
    if verify and official:
        check_file(path, _file_spec(), progress=progress)
    cache = _cache_path(path)
    stamp = _stamp(path)
    if not cache.exists() or _read_stamp(cache) != stamp:
        # No cache, or one that was not converted from this very file (another or an edited
        # h5, or a .npy put there by hand): checksum the h5, then convert it again.
        if official and not verify:  # checksum once, before spending minutes converting
            check_file(path, _file_spec(), progress=progress)
        _validate_h5(path, sizes, full=True)
        _convert(path, cache, sizes, progress=progress)
        atomic_write_json(_stamp_path(cache), stamp)
    else:
        _validate_h5(path, sizes, full=False)
    return Shapes3D(path, cache, _open_cache(cache, sizes), sizes)


def _stamp(path: Path) -> dict:
    """What identifies the h5 a cache was converted from, cheaply: its size and mtime."""
    st = path.stat()
    return {"source": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamp_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".source.json")


def _read_stamp(cache: Path) -> dict | None:
    import json

    try:
        return json.loads(_stamp_path(cache).read_text())
    except (OSError, ValueError):
        return None


def _cache_path(path: Path) -> Path:
    """Beside the h5 when that directory is writable, else in the data dir."""
    beside = path.with_name(path.stem + "_images.npy")
    if beside.exists() or _writable(path.parent):
        return beside
    return data_dir() / "shapes3d" / beside.name


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


@contextlib.contextmanager
def _open_h5(path: Path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(
            f"{path} cannot be read as HDF5 ({e}); it is truncated or corrupt: "
            f"delete it and download it again"
        ) from None
    with f:
        yield f


def _validate_h5(path: Path, sizes: tuple, *, full: bool) -> None:
    """Keys, shapes, dtypes, and labels consistent with the index layout.

    `full` checks every label row (at conversion); otherwise a spread of slices, which
    catches a file in another order at the cost of a few small reads.
    """
    n = int(np.prod(sizes))
    with _open_h5(path) as f:
        missing = [k for k in ("images", "labels") if k not in f]
        if missing:
            raise DataError(f"{path} has no {' or '.join(missing)} dataset (keys: {sorted(f.keys())})")
        images, labels = f["images"], f["labels"]
        if images.shape != (n, *IMAGE_SHAPE) or images.dtype != np.uint8:
            raise DataError(
                f"{path}: images are {images.dtype} {images.shape}, expected uint8 {(n, *IMAGE_SHAPE)}"
            )
        if labels.shape != (n, len(sizes)) or labels.dtype.kind != "f":
            raise DataError(
                f"{path}: labels are {labels.dtype} {labels.shape}, expected float {(n, len(sizes))}"
            )
        step = n if full else min(n, 256)
        starts = [0] if full else np.linspace(0, n - step, 8).astype(np.int64).tolist()
        strides = np.concatenate([np.cumprod(np.asarray(sizes)[::-1])[::-1][1:], [1]])
        for start in starts:
            try:
                rows = labels[start : start + step]  # (step, 6) float64
            except OSError as e:
                raise DataError(f"{path}: labels cannot be read ({e}); the file is corrupt") from None
            idx = np.arange(start, start + step)[:, None]
            f_idx = (idx // strides[None, :]) % np.asarray(sizes)[None, :]  # (step, 6)
            expected = np.stack([v[f_idx[:, k]] for k, v in enumerate(FACTOR_VALUES)], axis=1)
            # atol tolerates float32-rounded values; neighbouring values differ by >= 0.07
            bad = np.flatnonzero(~np.isclose(rows, expected, atol=1e-4).all(axis=1))
            if bad.size:
                i = start + int(bad[0])
                raise DataError(
                    f"{path}: labels of image {i} are {rows[bad[0]].tolist()}, expected "
                    f"{expected[bad[0]].tolist()} from the Shapes3D index layout; "
                    f"the file is not the official 3dshapes.h5"
                )


def _convert(path: Path, cache: Path, sizes: tuple, *, progress: bool) -> None:
    """Decompress all images once into an uint8 .npy; atomic, so a crash leaves nothing."""
    n = int(np.prod(sizes))
    bar = Progress(n, f"converting {path.name} to {cache.name}", unit="images", enabled=progress)
    with _open_h5(path) as f, atomic_path(cache) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *IMAGE_SHAPE))
        for start in range(0, n, CONVERT_BATCH):
            stop = min(n, start + CONVERT_BATCH)
            try:
                out[start:stop] = f["images"][start:stop]
            except OSError as e:
                raise DataError(
                    f"{path}: images {start}..{stop - 1} cannot be read ({e}); "
                    f"the file is corrupt: delete it and download it again"
                ) from None
            bar.update(stop - start)
        out.flush()
        del out
    bar.close()


def _open_cache(cache: Path, sizes: tuple) -> np.ndarray:
    n = int(np.prod(sizes))
    try:
        arr = np.load(cache, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise DataError(
            f"the converted cache {cache} is unreadable ({e}); delete it and load again "
            f"to rebuild it from the h5"
        ) from None
    if arr.shape != (n, *IMAGE_SHAPE) or arr.dtype != np.uint8:
        raise DataError(
            f"the converted cache {cache} is {arr.dtype} {arr.shape}, expected uint8 "
            f"{(n, *IMAGE_SHAPE)}; delete it and load again to rebuild it from the h5"
        )
    return arr

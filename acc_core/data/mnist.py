"""MNIST (LeCun & Cortes 1998) from its original IDX files, for digit style isolation.

The ACC paper section 4.2 / the ABC supplement S8.2: sets of 64 images of one digit (the inactive factor)
are embedded by the network of Table S4, with the digit 9 held out. The four .gz files
(manifest `data_manifests/mnist.json`: names, mirrors, sizes, md5) are read from a data
directory, or fetched by `download_mnist` with a progress bar, a short timeout and an md5
check before the file is put in place.
"""

from __future__ import annotations

from pathlib import Path

from acc_core.data.base import DataError
from acc_core.data.digits import DIGIT_SIZE, DigitDataset
from acc_core.data.download import CONNECT_TIMEOUT_S, check_file, fetch, read_idx
from acc_core.paths import data_dir

SPLITS = {  # split -> (images file, labels file, number of images in the official files)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}


class UnofficialFile(UserWarning):
    """An MNIST file that is not the official one (other length, other bytes): it is used as
    given, with a one-line notice."""


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; valid splits: {', '.join(SPLITS)}")


def _files() -> dict[str, dict]:
    from acc_core.data import manifest

    return {f["name"]: f for f in manifest("mnist")["files"]}


def default_dir() -> Path:
    return data_dir() / "mnist"


def _find(directory: Path, name: str) -> Path | None:
    """The .gz, or the uncompressed file many tools leave behind (same name without .gz)."""
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(root=None, *, split: str = "train", verify: bool = False) -> DigitDataset:
    """Load one MNIST split from `root` (a directory; default data_dir()/mnist).

    The IDX structure (magic, dims, sizes) is always validated, and the number of images
    comes from the headers: files of any length work (e.g. your own split). A .gz whose size
    is the official file's must have its md5 (a corrupt download is an error); any other file
    is taken as an unofficial one, with a one-line notice (`UnofficialFile`). `verify=True`
    requires the official files.
    """
    _check_split(split)
    directory = default_dir() if root is None else Path(root).expanduser()
    images_name, labels_name, n = SPLITS[split]
    paths = {name: _find(directory, name) for name in (images_name, labels_name)}
    missing = [name for name, p in paths.items() if p is None]
    if missing:
        raise DataError(
            f"MNIST {split} files not found in {directory} (missing {', '.join(missing)}); "
            f"run `acc data download mnist` or place the files there "
            f"(the data dir is set by ACC_DATA_DIR)"
        )
    specs = _files()
    for name, p in paths.items():
        _check_or_notice(p, specs[name], verify)
    images = read_idx(paths[images_name])  # (n, 28, 28) uint8
    labels = read_idx(paths[labels_name])  # (n,) uint8
    n = images.shape[0]
    if images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise DataError(
            f"{paths[images_name]} holds images of shape {images.shape[1:]}, expected "
            f"{(DIGIT_SIZE, DIGIT_SIZE)} (MNIST digits)"
        )
    if labels.shape != (n,):
        raise DataError(f"{paths[labels_name]} holds labels of shape {labels.shape}, but "
                        f"{paths[images_name]} holds {n:,} images: give both files of one split")
    if labels.max() > 9:
        raise DataError(f"{paths[labels_name]} has a label {labels.max()} outside 0..9; the file is corrupt")
    return DigitDataset("mnist", images, labels)


def _check_or_notice(path: Path, spec: dict, verify: bool) -> None:
    """The official file must be intact; another file is used, with a one-line notice."""
    import warnings

    if path.suffix == ".gz" and (verify or path.stat().st_size == spec.get("size")):
        check_file(path, spec)  # official size (or asked for): the checksum must match
        return
    if verify:
        check_file(path, spec)
    warnings.warn(f"{path} is not the official MNIST file as published (another size, or "
                  "uncompressed), so no checksum applies; using it as given", UnofficialFile,
                  stacklevel=3)


def download_mnist(
    dest=None,
    progress: bool = True,
    *,
    split: str | None = None,
    mirrors: list[str] | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
) -> Path:
    """Download the MNIST .gz files (both splits, or one) into `dest` (default data_dir()/mnist).

    Files already present with the right md5 are kept. Each file is tried from every mirror
    in the manifest (or `mirrors`, base URLs ending in '/'), md5-checked and renamed into
    place only when it matches. Offline or wrong checksum -> DataError, nothing left behind.
    Returns the directory.
    """
    if split is not None:
        _check_split(split)
    directory = default_dir() if dest is None else Path(dest).expanduser()
    wanted = [name for s, (im, lab, _) in SPLITS.items() if split in (None, s) for name in (im, lab)]
    specs = _files()
    for name in wanted:
        spec = specs[name]
        target = directory / name
        if target.is_file():
            try:
                check_file(target, spec)
                continue
            except DataError:
                pass  # a stale or partial file from elsewhere: replace it
        urls = spec["urls"] if mirrors is None else [m.rstrip("/") + "/" + name for m in mirrors]
        fetch(urls, target, spec, timeout=timeout, progress=progress)
    return directory


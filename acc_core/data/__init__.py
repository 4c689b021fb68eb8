"""Factor datasets: `load(name, root=None) -> FactorDataset` (DESIGN.md, "Data sources").

Sources register themselves in `SOURCES` (name -> loader). Each has a manifest in
`data_manifests/<name>.json` with its factors, value labels, files, URLs, checksums, licence.
"""

from __future__ import annotations

import json
from typing import Callable

from acc_core.data.base import DataError, FactorDataset
from acc_core.paths import MANIFEST_DIR

# name -> (module, loader function); imported lazily so `import acc_core.data` stays cheap.
SOURCES: dict[str, tuple[str, str]] = {
    "shapes3d-procedural": ("acc_core.data.shapes3d_procedural", "load_procedural"),
    "shapes3d": ("acc_core.data.shapes3d", "load_shapes3d"),
    "mnist": ("acc_core.data.mnist", "load_mnist"),
    "digits": ("acc_core.data.digits", "load_digits"),
    "digits-colored": ("acc_core.data.digits_colored", "load_digits_colored"),
    "pose-procedural": ("acc_core.data.pose_procedural", "load_pose_procedural"),
}

_CACHE: dict[tuple, FactorDataset] = {}


def available() -> list[str]:
    return list(SOURCES)


def manifest(name: str) -> dict:
    _check_name(name)
    with open(MANIFEST_DIR / f"{name}.json") as f:
        return json.load(f)


def _check_name(name: str) -> None:
    if name not in SOURCES:
        raise ValueError(f"unknown data source {name!r}; valid names: {', '.join(SOURCES)}")


def load(name: str, root=None, **kwargs) -> FactorDataset:
    """Load a data source by name. `root` is a file or data directory where relevant."""
    _check_name(name)
    key = (name, None if root is None else str(root), tuple(sorted(kwargs.items())))
    if key in _CACHE:
        return _CACHE[key]
    import importlib

    module, fn = SOURCES[name]
    loader: Callable[..., FactorDataset] = getattr(importlib.import_module(module), fn)
    ds = loader(root, **kwargs)
    _CACHE[key] = ds
    return ds


# Sources with a held-out test split: name -> the splits their loader takes.
TEST_SPLITS = {"mnist": "test"}


# Sources made for one scenario name the method that trains it when none is asked for.
DEFAULT_METHODS = {"pose-procedural": "acc_pose"}


def default_method(source: str) -> str:
    """The method `acc train --data SOURCE` uses without --method (ACC unless the source
    was made for another scenario)."""
    return DEFAULT_METHODS.get(source, "acc")


# Procedural sources that draw natively at any image size.
NATIVE_SIZE = ("shapes3d-procedural", "pose-procedural")


def load_for(data_config, split: str = "train") -> FactorDataset:
    """The dataset a run's DataConfig names (its `split`: "train", or "test" for sources
    with one); the procedural renderer draws natively at `image_size` (other sources are
    area-resized by the training loop)."""
    if split != "train":
        if TEST_SPLITS.get(data_config.source) != split:
            raise ValueError(f"{data_config.source} has no {split!r} split")
        return load(data_config.source, split=split)
    if data_config.image_size and data_config.source in NATIVE_SIZE:
        return load(data_config.source, size=data_config.image_size)
    return load(data_config.source)


def eval_split(data_config) -> str:
    """Where a run's evaluations embed their images: the source's held-out test split when
    it has one and its files are present, else the training split (grid datasets hold
    every combination once; digits has no split)."""
    split = TEST_SPLITS.get(data_config.source)
    if split is None:
        return "train"
    try:
        load_for(data_config, split)
        return split
    except DataError:
        return "train"


def factor_names(name: str) -> list[str]:
    return [f["name"] for f in manifest(name)["factors"]]


__all__ = ["DataError", "FactorDataset", "SOURCES", "available", "default_method", "factor_names", "load",
           "load_for", "manifest"]

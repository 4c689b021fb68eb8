"""Real data sources: shapes3d (a small h5 in the real layout), mnist (the real test split),
digits; manifests; IDX parsing; checksummed, atomic downloads (never the real network)."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from acc_core.data import DataError, load, manifest
from acc_core.data import shapes3d as s3d
from acc_core.data.digits import load_digits
from acc_core.data.download import file_digest, read_idx
from acc_core.data.mnist import download_mnist, load_mnist

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"the real MNIST test split is not at {MNIST_DIR}",
)
SMALL = (2, 2, 2, 2, 2, 3)  # 96 images in the real index layout, through the testing hook


# ----- helpers ------------------------------------------------------------------------------
def write_shapes_h5(path: Path, sizes=SMALL, *, images_shape=None, labels=None, keys=("images", "labels")):
    n = int(np.prod(sizes))
    strides = np.concatenate([np.cumprod(np.asarray(sizes)[::-1])[::-1][1:], [1]])
    f_idx = (np.arange(n)[:, None] // strides) % np.asarray(sizes)  # (n, 6)
    if labels is None:
        labels = np.stack([v[f_idx[:, k]] for k, v in enumerate(s3d.FACTOR_VALUES)], axis=1)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=images_shape or (n, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        if "images" in keys:
            f.create_dataset("images", data=images, chunks=True, compression="gzip")
        if "labels" in keys:
            f.create_dataset("labels", data=labels)
    return images


def write_idx(path: Path, data: np.ndarray, magic_type: int = 0x08, *, extra: bytes = b"") -> None:
    header = bytes([0, 0, magic_type, data.ndim]) + np.asarray(data.shape, dtype=">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + data.astype(np.uint8).tobytes() + extra)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(directory) -> base URL of a local HTTP server on 127.0.0.1."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def round_trip(ds) -> None:
    idx = np.random.default_rng(0).integers(0, len(ds), size=50)
    f = ds.factors(idx)  # (50, K)
    assert f.dtype == np.int64 and f.shape == (50, ds.num_factors)
    assert ((f >= 0) & (f < np.asarray(ds.factor_sizes))).all()
    back = ds.index_of(f)
    if ds.is_grid:
        np.testing.assert_array_equal(back, idx)
    else:  # several images share a label: index_of returns one of them
        np.testing.assert_array_equal(ds.factors(back), f)


# ----- manifests ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["shapes3d", "mnist", "digits"])
def test_manifest_fields(name):
    m = manifest(name)
    for key in ("name", "factors", "image_shape", "files", "licence", "citation"):
        assert key in m, key
    assert m["name"] == name
    for factor in m["factors"]:
        assert factor["size"] == len(factor["values"]) == len(factor["labels"])
    for spec in m["files"]:
        assert spec["urls"] and spec["size"] > 0 and ("md5" in spec or "sha256" in spec)


def test_shapes3d_manifest_matches_loader_facts():
    m = manifest("shapes3d")
    assert [f["name"] for f in m["factors"]] == list(s3d.FACTOR_NAMES)
    assert [f["size"] for f in m["factors"]] == list(s3d.FACTOR_SIZES)
    for f, values in zip(m["factors"], s3d.FACTOR_VALUES):
        np.testing.assert_allclose(f["values"], values)
    (spec,) = m["files"]
    assert spec["size"] == 267_573_662
    assert spec["sha256"] == "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785"


# ----- digits -----------------------------------------------------------------------------
def test_digits_source():
    ds = load("digits")
    assert len(ds) == 1797 and ds.image_shape == (28, 28, 1) and not ds.is_grid
    assert ds.factor_names == ("digit",) and ds.value_labels[0] == tuple("0123456789")
    images = ds.images(np.arange(len(ds)))
    assert images.dtype == np.uint8 and images.shape == (1797, 28, 28, 1)
    assert images.max() >= 250  # rescaled to 0..255, not left at 0..16
    assert images[:, :4].max() == 0 and images[:, -4:].max() == 0  # MNIST's black margin
    counts = np.bincount(ds.factors(np.arange(len(ds)))[:, 0], minlength=10)
    assert counts.min() >= 170 and counts.sum() == 1797
    round_trip(ds)


def test_digits_labels_match_sklearn():
    from sklearn.datasets import load_digits as sk

    np.testing.assert_array_equal(load_digits().factors(np.arange(1797))[:, 0], sk().target)


# ----- mnist ------------------------------------------------------------------------------
@needs_mnist
def test_mnist_real_test_split():
    ds = load_mnist(MNIST_DIR, split="test", verify=True)  # md5 against the manifest
    assert len(ds) == 10000 and ds.image_shape == (28, 28, 1) and ds.name == "mnist"
    counts = np.bincount(ds.factors(np.arange(10000))[:, 0], minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.factors([0])[0, 0] == 7  # the first test image is a 7
    img = ds.images([0])
    assert img.shape == (1, 28, 28, 1) and img.max() == 255 and img[0, :3].max() == 0
    round_trip(ds)


@needs_mnist
def test_mnist_reads_uncompressed_files(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(MNIST_DIR / f"{name}.gz") as src:
            (tmp_path / name).write_bytes(src.read())
    ds = load_mnist(tmp_path, split="test")
    assert len(ds) == 10000


def test_mnist_missing_files_message(tmp_path):
    with pytest.raises(DataError, match="acc data download mnist") as e:
        load_mnist(tmp_path, split="train")
    assert str(tmp_path) in str(e.value) and "train-images-idx3-ubyte.gz" in str(e.value)


def test_mnist_unknown_split():
    with pytest.raises(ValueError, match="valid splits: train, test"):
        load_mnist(split="validation")


@needs_mnist
def test_mnist_truncated_gz(tmp_path):
    raw = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    shutil.copy(MNIST_DIR / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_mnist(tmp_path, split="test")


def test_idx_wrong_magic(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((3, 28, 28)), magic_type=0x09)
    with pytest.raises(DataError, match="magic 0x00000903"):
        read_idx(tmp_path / "x.gz")


def test_idx_data_shorter_than_header(tmp_path):
    data = np.arange(12).reshape(3, 4)
    write_idx(tmp_path / "ok.gz", data)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok.gz"), data)
    header = bytes([0, 0, 8, 2]) + np.asarray([3, 4], dtype=">i4").tobytes()
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(header + bytes(10))  # 12 bytes promised, 10 present
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "short.gz")


def test_mnist_counts_come_from_the_headers(tmp_path):
    from acc_core.data.mnist import UnofficialFile

    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.warns(UnofficialFile):
        assert len(load_mnist(tmp_path, split="test")) == 5
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(6))
    with pytest.warns(UnofficialFile), pytest.raises(DataError, match="give both files of one split"):
        load_mnist(tmp_path, split="test")


def test_mnist_verify_rejects_wrong_file(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10000, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10000))
    with pytest.warns(UserWarning, match="not the official"):
        assert len(load_mnist(tmp_path, split="test")) == 10000  # structurally valid
    with pytest.raises(DataError, match="official"):
        load_mnist(tmp_path, split="test", verify=True)


# ----- downloads --------------------------------------------------------------------------
def test_download_offline_fails_fast_and_leaves_nothing(tmp_path):
    start = time.monotonic()
    with pytest.raises(DataError, match="could not download") as e:
        download_mnist(tmp_path / "mnist", progress=False, mirrors=["http://127.0.0.1:9/"], timeout=2)
    assert time.monotonic() - start < 10
    assert "place it at" in str(e.value) and "127.0.0.1:9/train-images" in str(e.value)
    dest = tmp_path / "mnist"
    assert not dest.exists() or list(dest.iterdir()) == []


def test_download_wrong_md5_leaves_nothing(tmp_path, serve):
    wrong = tmp_path / "server"
    wrong.mkdir()
    specs = {f["name"]: f for f in manifest("mnist")["files"]}
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (wrong / name).write_bytes(bytes(specs[name]["size"]))  # the right size, wrong bytes
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="could not download t10k-images.*md5 .* does not match"):
        download_mnist(dest, progress=False, split="test", mirrors=[serve(wrong)])
    assert list(dest.iterdir()) == []  # no partial file, no temporary file


@needs_mnist
def test_download_from_local_mirror(tmp_path, serve):
    base = serve(MNIST_DIR)
    dest = download_mnist(tmp_path / "mnist", progress=False, split="test", mirrors=["http://127.0.0.1:9/", base])
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert file_digest(dest / names[1], "md5") == "ec29112dd5afa0611ce80d1b7f02629c"
    assert len(load_mnist(dest, split="test")) == 10000
    # Present and correct files are kept: no network needed the second time.
    download_mnist(dest, progress=False, split="test", mirrors=["http://127.0.0.1:9/"])


# ----- shapes3d ---------------------------------------------------------------------------
def test_shapes3d_small_file_round_trip(tmp_path):
    h5 = tmp_path / "3dshapes.h5"
    images = write_shapes_h5(h5)
    ds = s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)
    assert len(ds) == 96 and ds.is_grid and ds.factor_names == s3d.FACTOR_NAMES
    assert ds.cache_path == tmp_path / "3dshapes_images.npy" and ds.cache_path.is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # the conversion left no temporary file
    idx = np.array([95, 0, 17, 17, 60])
    np.testing.assert_array_equal(ds.images(idx), images[idx])
    round_trip(ds)
    # index 3 * 1 + 1 * 3 = orientation 0, shape 1 in the (2,2,2,2,2,3) layout
    assert ds.factors([3]).tolist() == [[0, 0, 0, 0, 1, 0]]
    assert ds.value_labels[4] == ("cube", "cylinder")
    # A second load memmaps the cache instead of converting again.
    mtime = ds.cache_path.stat().st_mtime_ns
    again = s3d.load_shapes3d(h5, progress=False, _factor_sizes=SMALL)
    assert again.cache_path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.images(idx), images[idx])


def test_shapes3d_production_path_insists_on_full_file(tmp_path):
    write_shapes_h5(tmp_path / "3dshapes.h5")
    with pytest.raises(DataError, match="267,573,662"):
        s3d.load_shapes3d(tmp_path, progress=False)
    assert not (tmp_path / "3dshapes_images.npy").exists()


def test_shapes3d_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("ACC_DATA_DIR", str(tmp_path))
    assert s3d.resolve_path() == tmp_path / "shapes3d" / "3dshapes.h5"
    with pytest.raises(DataError) as e:
        load("shapes3d", root=tmp_path / "nowhere" / "3dshapes.h5")
    msg = str(e.value)
    for part in ("https://storage.googleapis.com/3d-shapes/3dshapes.h5", "267,573,662",
                 "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785",
                 "ACC_DATA_DIR", str(tmp_path / "shapes3d" / "3dshapes.h5")):
        assert part in msg, part


def test_shapes3d_truncated_h5(tmp_path):
    h5 = tmp_path / "3dshapes.h5"
    write_shapes_h5(h5)
    raw = h5.read_bytes()
    h5.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        s3d.load_shapes3d(h5, progress=False, _factor_sizes=SMALL)


def test_shapes3d_wrong_shapes_and_keys(tmp_path):
    bad = tmp_path / "a" / "3dshapes.h5"
    bad.parent.mkdir()
    write_shapes_h5(bad, images_shape=(96, 32, 32, 3))
    with pytest.raises(DataError, match=r"expected uint8 \(96, 64, 64, 3\)"):
        s3d.load_shapes3d(bad, progress=False, _factor_sizes=SMALL)
    nolabels = tmp_path / "b" / "3dshapes.h5"
    nolabels.parent.mkdir()
    write_shapes_h5(nolabels, keys=("images",))
    with pytest.raises(DataError, match="no labels dataset"):
        s3d.load_shapes3d(nolabels, progress=False, _factor_sizes=SMALL)


def test_shapes3d_labels_in_another_order(tmp_path):
    n = int(np.prod(SMALL))
    labels = np.zeros((n, 6))  # every image claims the first factor values
    write_shapes_h5(tmp_path / "3dshapes.h5", labels=labels)
    with pytest.raises(DataError, match="index layout"):
        s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)


def test_shapes3d_corrupt_cache(tmp_path):
    write_shapes_h5(tmp_path / "3dshapes.h5")
    ds = s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)
    raw = ds.cache_path.read_bytes()
    ds.cache_path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="delete it"):
        s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)


def test_shapes3d_interrupted_conversion_leaves_nothing(tmp_path, monkeypatch):
    write_shapes_h5(tmp_path / "3dshapes.h5")
    monkeypatch.setattr(s3d, "CONVERT_BATCH", 10)

    def interrupt(self, n):
        if self.done + n > 30:
            raise KeyboardInterrupt
        self.done += n

    monkeypatch.setattr(s3d.Progress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3dshapes.h5"]


def test_shapes3d_cache_is_used_only_for_the_h5_it_came_from(tmp_path):
    """A .npy found beside the h5 without the record of its conversion (put there by hand, or
    left by another file), or beside an h5 that changed since, is not trusted: the h5 is
    checked and converted again."""
    import os

    h5 = tmp_path / "3dshapes.h5"
    images = write_shapes_h5(h5)
    cache = tmp_path / "3dshapes_images.npy"
    np.save(cache, np.zeros_like(images))  # black images, no conversion record
    ds = s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)
    np.testing.assert_array_equal(ds.images([5, 17]), images[[5, 17]])
    # the h5 changes under its cache: new bytes, new mtime
    rng = np.random.default_rng(7)
    import h5py

    with h5py.File(h5, "r+") as f:
        f["images"][...] = rng.integers(0, 255, f["images"].shape, dtype=np.uint8)
        other = f["images"][...]
    os.utime(h5, ns=(h5.stat().st_atime_ns, h5.stat().st_mtime_ns + 10**9))
    fresh = s3d.load_shapes3d(tmp_path, progress=False, _factor_sizes=SMALL)
    np.testing.assert_array_equal(fresh.images([5, 17]), other[[5, 17]])

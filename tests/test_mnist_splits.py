"""Real digits, properly evaluated: MNIST IDX files of any length are read (counts from the
headers, an unofficial file with a one-line notice), and a run trained on the train split
embeds held-out test images for every evaluation."""

from __future__ import annotations

import gzip
import struct
import warnings

import numpy as np
import pytest
from conftest import SHARED

from acc_core import data as data_sources
from acc_core import evaluate, rundir
from acc_core.data.base import DataError
from acc_core.data.download import read_idx
from acc_core.data.mnist import UnofficialFile, load_mnist

REAL = SHARED / "data" / "mnist"


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture
def split_8000_2000(tmp_path, monkeypatch):
    """An 8,000 / 2,000 train / test split made from the real MNIST test split."""
    real = load_mnist(REAL, split="test")
    images, labels = real.images(np.arange(len(real)))[..., 0], real.factors(np.arange(len(real)))[:, 0]
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    write_idx(d / "train-images-idx3-ubyte.gz", images[:8000])
    write_idx(d / "train-labels-idx1-ubyte.gz", labels[:8000])
    write_idx(d / "t10k-images-idx3-ubyte.gz", images[8000:])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels[8000:])
    monkeypatch.setenv("ACC_DATA_DIR", str(tmp_path / "data"))
    data_sources._CACHE.clear()
    yield labels
    data_sources._CACHE.clear()


def test_any_length_is_read_with_a_notice(split_8000_2000):
    with pytest.warns(UnofficialFile, match="not the official MNIST file"):
        train = load_mnist(split="train")
    assert len(train) == 8000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialFile)
        assert len(load_mnist(split="test")) == 2000


def test_the_official_file_is_checked_against_its_checksum(tmp_path):
    real = REAL / "t10k-images-idx3-ubyte.gz"
    d = tmp_path / "mnist"
    d.mkdir()
    data = bytearray(real.read_bytes())
    data[-10] ^= 0xFF  # same size as the official file, other bytes
    (d / real.name).write_bytes(bytes(data))
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes((REAL / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="md5"):
        load_mnist(d, split="test")


def test_a_header_that_asks_too_much_or_a_gzip_bomb_fails_fast(tmp_path):
    huge = tmp_path / "huge.gz"
    with gzip.open(huge, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3i", 2**31 - 1, 28, 28))
    with pytest.raises(DataError, match="more than"):
        read_idx(huge)
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">i", 1000))
        zeros = bytes(1 << 20)
        for _ in range(256):  # 256 MB of zeros, a few hundred KB compressed
            f.write(zeros)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(DataError, match="holds more data bytes"):
        read_idx(bomb)  # reads 1,001 bytes of it, not 256 MB


def test_training_on_train_evaluates_on_held_out_test_images(split_8000_2000, tmp_path, acc_home):
    import dataclasses

    from acc_core.config import preset
    from acc_core.train import train

    cfg = preset("paper", "mnist")
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, steps=4, set_size=16, snapshot_every=2,
                                                checkpoint_every=2, probe_size=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialFile)
        assert data_sources.eval_split(cfg.data) == "test"
        assert train(cfg, tmp_path / "run", device="cpu")["status"] == "done"
        snap = rundir.load_snapshot(tmp_path / "run", 4)
        assert snap["split"] == "test" and snap["indices"].max() < 2000
        test_labels = split_8000_2000[8000:]
        np.testing.assert_array_equal(snap["factors"][:, 0], test_labels[snap["indices"]])
        rep = evaluate.report(tmp_path / "run")
        assert rep["split"] == "test"
        assert "test split (held out from training)" in evaluate.format_report(rep)
        assert len(evaluate.dataset(tmp_path / "run")) == 2000

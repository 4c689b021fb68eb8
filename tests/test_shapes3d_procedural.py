"""The procedural Shapes3D source: layout, determinism, appearance, materialised cache."""

import json

import numpy as np
import pytest
import torch

from acc_core import data
from acc_core.data import DataError
from acc_core.data import shapes3d_procedural as sp
from acc_core.paths import MANIFEST_DIR

SIZE = 32  # small enough to cast quickly, large enough to see every factor


@pytest.fixture(scope="module")
def ds():
    return sp.load_procedural(size=SIZE)


def base_factors():
    # floor red, wall blue, object green, mid scale, capsule, facing the back wall
    return np.array([0, 6, 3, 4, 3, 7])


def test_metadata_matches_the_real_file_and_the_manifest():
    ds = data.load("shapes3d-procedural")
    assert ds.name == "shapes3d-procedural" and ds.is_grid and len(ds) == 480_000
    assert ds.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape",
                               "orientation")
    assert ds.factor_sizes == (10, 10, 10, 8, 4, 15) and ds.image_shape == (64, 64, 3)
    np.testing.assert_allclose(ds.factor_values[0], np.arange(10) / 10)
    np.testing.assert_allclose(ds.factor_values[3], np.linspace(0.75, 1.25, 8))
    np.testing.assert_allclose(ds.factor_values[5], np.linspace(-30, 30, 15))
    assert ds.value_labels[4] == ("cube", "cylinder", "sphere", "capsule")
    assert ds.value_labels[5][0] == "-30.0°" and ds.value_labels[3][0] == "0.75"
    manifest = data.manifest("shapes3d-procedural")
    assert manifest["files"] == [] and "Burgess" in manifest["citation"]
    assert [f["labels"] for f in manifest["factors"]] == [list(v) for v in ds.value_labels]
    with open(MANIFEST_DIR / "shapes3d.json") as f:  # same factors as the real source
        assert json.load(f)["factors"] == manifest["factors"]


def test_factors_and_index_of_round_trip_in_the_real_layout(ds):
    idx = np.random.default_rng(0).integers(0, len(ds), 2000)
    f = ds.factors(idx)
    np.testing.assert_array_equal(ds.index_of(f), idx)
    np.testing.assert_array_equal(sp.grid_factors(idx), f)
    # orientation varies fastest, floor hue slowest
    np.testing.assert_array_equal(ds.factors([1, 15, 479_999]),
                                  [[0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0], [9, 9, 9, 7, 3, 14]])


def test_render_is_deterministic_with_the_right_shape_and_dtype(ds):
    f = ds.factors(np.random.default_rng(1).integers(0, len(ds), 300))
    a, b = sp.render(f, SIZE), sp.render(f[::-1].copy(), SIZE)
    assert a.dtype == torch.uint8 and a.shape == (300, SIZE, SIZE, 3)
    assert torch.equal(a, b.flip(0))  # same factors, same pixels, whatever the batch
    imgs = ds.images(np.arange(5))
    assert imgs.dtype == np.uint8 and imgs.shape == (5, SIZE, SIZE, 3)
    np.testing.assert_array_equal(imgs, ds.images_tensor(np.arange(5)).numpy())


def test_every_factor_visibly_changes_its_part_of_the_image():
    base = base_factors()
    variants = np.repeat(base[None], 7, 0)
    for k, v in enumerate([5, 1, 8, 0, 0, 0]):  # one factor changed per row 1..6
        variants[k + 1, k] = v
    img = sp.render(variants, SIZE).numpy().astype(int)
    diff = np.abs(img[1:] - img[:1]).sum(-1)  # (6, H, W)
    h = SIZE
    floor_rows, wall_rows = slice(int(0.9 * h), h), slice(int(0.3 * h), int(0.55 * h))
    left, centre = slice(0, h // 8), slice(h // 2 - 2, h // 2 + 2)
    assert diff[0][floor_rows, left].min() > 100  # floor hue: bottom rows
    assert diff[0][: h // 5].max() == 0  # ... and never the sky
    assert diff[1][wall_rows, left].min() > 100  # wall hue: the wall beside the object
    assert diff[2][int(0.5 * h):int(0.7 * h), centre].min() > 100  # object hue: centre
    assert diff[2][:, left].max() == 0
    for k in (3, 4, 5):  # scale, shape, orientation all move pixels
        assert (diff[k] > 60).sum() > 0.02 * h * h


def test_sky_band_and_colours_look_like_the_real_dataset(ds):
    img = ds.images(np.random.default_rng(2).integers(0, len(ds), 50)).astype(int)
    sky = img[:, : SIZE // 5, : SIZE // 4]  # tall objects can reach the top rows' centre
    assert np.abs(sky - np.array([153, 226, 249])).max() <= 2
    small = sp.render([[0, 0, 0, 0, 2, 0]], SIZE)[0].numpy().astype(int)  # small sphere
    assert np.abs(small[: SIZE // 5] - np.array([153, 226, 249])).max() <= 2
    red_floor = sp.render([[0, 6, 7, 0, 2, 7]], SIZE)[0].numpy().astype(int)
    r, g, b = red_floor[-2, 1]
    assert r > 200 and g < 20 and b < 20  # hue 0 is HSV(0, 1, 1) red
    obj = red_floor[int(0.7 * SIZE), SIZE // 2]  # object hue 0.7 -> about (48, 0, 242)
    assert obj[2] > 180 and obj[1] < 20 and 0.1 < obj[0] / obj[2] < 0.3


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="out of range"):
        sp.render([[10, 0, 0, 0, 0, 0]], SIZE)
    with pytest.raises(ValueError, match="image size"):
        sp.load_procedural(size=2)


def test_materialise_writes_the_rendered_images(tmp_path):
    path = sp.materialise(tmp_path / "part.npy", size=8, progress=False, limit=40)
    got = np.load(path)
    assert got.shape == (40, 8, 8, 3)
    np.testing.assert_array_equal(got, sp.render(sp.grid_factors(np.arange(40)), 8).numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["part.npy"]  # no temp file left


def test_interrupted_materialise_leaves_nothing(tmp_path, monkeypatch):
    def broken(factors, size):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(sp, "render", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        sp.materialise(tmp_path / "x.npy", size=8, progress=False, limit=10)
    assert list(tmp_path.iterdir()) == []


def test_a_complete_cache_is_memory_mapped_and_served(tmp_path):
    path = sp.cache_path(tmp_path, 4)
    path.parent.mkdir(parents=True)
    cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                      shape=(480_000, 4, 4, 3))
    cache[7] = 77  # a marker the renderer would never draw everywhere
    cache.flush()
    del cache
    ds = data.load("shapes3d-procedural", tmp_path, size=4)
    assert ds.materialised
    assert (ds.images([7]) == 77).all() and (ds.images_tensor([7]) == 77).all()


def test_wrong_or_corrupt_caches_raise_data_error(tmp_path):
    path = sp.cache_path(tmp_path, 4)
    sp.materialise(path, size=4, progress=False, limit=10)  # a partial cache
    with pytest.raises(DataError, match="delete .* re-render"):
        sp.load_procedural(tmp_path, size=4)
    cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                      shape=(480_000, 4, 4, 3))
    del cache
    with open(path, "r+b") as f:  # truncated, as by an interrupted copy
        f.truncate(1000)
    with pytest.raises(DataError, match="unreadable"):
        sp.load_procedural(tmp_path, size=4)
    path.write_bytes(b"not a numpy file")
    with pytest.raises(DataError, match="unreadable"):
        sp.load_procedural(tmp_path, size=4)

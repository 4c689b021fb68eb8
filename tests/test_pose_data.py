"""The `pose-procedural` source (acc_core.data.pose_procedural, pose_render): factors and index
layout, poses, determinism, the two domains, and that the viewpoint changes the image."""

from __future__ import annotations

import numpy as np
import pytest

from acc_core.data import load, load_for, manifest
from acc_core.data.pose_render import render


@pytest.fixture(scope="module")
def ds():
    return load("pose-procedural")


def test_factors_and_index_layout(ds):
    assert ds.factor_names == ("category", "instance", "azimuth", "elevation", "domain")
    assert ds.factor_sizes == (2, 12, 36, 5, 2)
    assert len(ds) == 2 * 12 * 36 * 5 * 2 and ds.is_grid
    idx = np.arange(len(ds))
    f = ds.factors(idx)
    np.testing.assert_array_equal(ds.index_of(f), idx)
    # the last factor (domain) is fastest, as in the other grid sources
    np.testing.assert_array_equal(f[:4], [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0],
                                          [0, 0, 0, 1, 1]])
    assert ds.value_labels[0] == ("car", "chair") and ds.value_labels[4] == ("synthetic", "real")
    m = manifest("pose-procedural")
    assert [x["name"] for x in m["factors"]] == list(ds.factor_names)
    assert [x["size"] for x in m["factors"]] == list(ds.factor_sizes)
    assert m["num_images"] == len(ds)


def test_poses_cover_the_circle_and_the_capped_hemisphere(ds):
    pose = ds.poses(np.arange(len(ds)))  # (n, 2) radians
    f = ds.factors(np.arange(len(ds)))
    np.testing.assert_allclose(np.unique(pose[:, 0]), np.deg2rad(np.arange(0, 360, 10)))
    assert pose[f[:, 0] == 0, 1].max() == pytest.approx(0.5)  # cars, appendix A.3
    assert pose[f[:, 0] == 1, 1].max() == pytest.approx(1.3)  # chairs
    assert pose[:, 1].min() == 0.0


def test_dictionary_has_1800_synthetic_images_per_category(ds):
    from acc_core.data.pose_procedural import DICTIONARY_INSTANCES, TEST_INSTANCES

    for cat in ("car", "chair"):
        assert len(ds.select(category=cat, instances=DICTIONARY_INSTANCES, domain="synthetic")) == 1800
        assert len(ds.select(category=cat, instances=TEST_INSTANCES, domain="real")) == 360


def test_deterministic_and_batch_independent(ds):
    f = np.array([[0, 3, 5, 2, 1], [1, 7, 20, 4, 1], [0, 0, 0, 0, 0], [1, 11, 35, 1, 0]])
    a, b = render(f, 32).numpy(), render(f, 32).numpy()
    np.testing.assert_array_equal(a, b)
    alone = np.concatenate([render(row[None], 32).numpy() for row in f])
    assert np.abs(alone.astype(int) - a.astype(int)).max() <= 1  # BLAS rounding at most
    assert a.dtype == np.uint8 and a.shape == (4, 32, 32, 3)


def test_domains_differ_and_real_backgrounds_are_cluttered(ds):
    syn = ds.images(ds.index_of([[0, 1, 3, 2, 0], [1, 4, 9, 1, 0]])).astype(float)
    real = ds.images(ds.index_of([[0, 1, 3, 2, 1], [1, 4, 9, 1, 1]])).astype(float)
    assert np.abs(syn - real).mean() > 20
    # synthetic corners are the plain background; real ones vary
    corners = lambda x: x[:, :6, :6].reshape(len(x), -1)  # noqa: E731
    assert corners(syn).std(1).max() < 1.0
    assert corners(real).std(1).min() > 3.0


def test_azimuth_and_elevation_change_the_image(ds):
    base = ds.images(ds.index_of([0, 2, 0, 2, 0]))[0].astype(float)
    for f in ([0, 2, 9, 2, 0], [0, 2, 18, 2, 0], [0, 2, 0, 4, 0]):
        assert np.abs(ds.images(ds.index_of(f))[0] - base).mean() > 3, f
    # instances differ too
    assert np.abs(ds.images(ds.index_of([0, 5, 0, 2, 0]))[0] - base).mean() > 3


def test_native_image_size_through_load_for():
    from acc_core.config import DataConfig

    ds = load_for(DataConfig(source="pose-procedural", image_size=32))
    assert ds.image_shape == (32, 32, 3) and ds.images([0, 1]).shape == (2, 32, 32, 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="out of range"):
        render([[2, 0, 0, 0, 0]], 32)
    with pytest.raises(ValueError, match="at least 8"):
        render([[0, 0, 0, 0, 0]], 4)


def test_rendering_on_one_thread_gives_the_same_images_and_restores_the_threads(monkeypatch):
    import torch

    from acc_core.data import pose_render

    f = np.array([[0, 1, 3, 2, 0], [1, 4, 30, 4, 1], [0, 11, 17, 0, 1]])
    before = torch.get_num_threads()
    one = pose_render.render(f, 24)
    assert torch.get_num_threads() == before
    monkeypatch.setattr(pose_render, "SINGLE_THREAD", False)
    assert torch.equal(pose_render.render(f, 24), one)


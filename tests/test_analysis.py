"""Known-answer tests for projections, probes, retrieval and the loss Monte Carlo."""

import math

import numpy as np
import pytest

from acc_core.analysis import loss_mc, probe, project, retrieval


# ----- projections -----------------------------------------------------------------------------
def test_pca_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    v = rng.normal(size=16)
    v /= np.linalg.norm(v)
    u = rng.normal(size=(500, 1)) * 10.0 * v + rng.normal(size=(500, 16)) * 0.1 + 3.0
    coords, ratio = project.pca(u, n_components=3)
    assert coords.shape == (500, 3) and ratio.shape == (3,)
    assert ratio.sum() <= 1.0 + 1e-12 and np.all(np.diff(ratio) <= 0)
    assert ratio[0] > 0.95
    # The first coordinate is the projection on ±v (up to centring).
    corr = np.corrcoef(coords[:, 0], (u - u.mean(0)) @ v)[0, 1]
    assert abs(corr) > 0.999
    again, _ = project.pca(u, n_components=3)
    np.testing.assert_array_equal(coords, again)  # sign-fixed, deterministic


def test_pca_rejects_too_many_components():
    with pytest.raises(ValueError, match="n_components"):
        project.pca(np.zeros((10, 2)), n_components=3)


def test_umap_shape_and_cache(tmp_path):
    rng = np.random.default_rng(1)
    u = np.concatenate([rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 8.0])
    coords = project.umap(u, seed=0, n_neighbors=10)
    assert coords.shape == (120, 2) and np.all(np.isfinite(coords))
    first = project.cached_projection(u, "umap", 2, tmp_path, seed=0, n_neighbors=10)
    second = project.cached_projection(u, "umap", 2, tmp_path, seed=0, n_neighbors=10)
    assert not first["cached"] and second["cached"]
    np.testing.assert_array_equal(first["coords"], second["coords"])
    np.testing.assert_allclose(first["coords"], coords, atol=1e-5)  # same seed, same picture


def test_cached_pca_keys_on_data_and_parameters(tmp_path):
    rng = np.random.default_rng(2)
    u = rng.normal(size=(50, 5))
    a = project.cached_projection(u, "pca", 2, tmp_path)
    b = project.cached_projection(u, "pca", 2, tmp_path)
    c = project.cached_projection(u + 1e-3, "pca", 2, tmp_path)
    d = project.cached_projection(u, "pca", 3, tmp_path)
    assert b["cached"] and not c["cached"] and not d["cached"]
    np.testing.assert_array_equal(a["explained_variance_ratio"], b["explained_variance_ratio"])
    a["path"].write_bytes(b"not an npz")  # a corrupt file is recomputed
    e = project.cached_projection(u, "pca", 2, tmp_path)
    assert not e["cached"]
    np.testing.assert_allclose(e["coords"], a["coords"])
    with pytest.raises(ValueError, match="projection"):
        project.cached_projection(u, "tsne", 2, tmp_path)


# ----- probes ----------------------------------------------------------------------------------
def test_probe_reads_separable_factors_and_not_noise():
    rng = np.random.default_rng(3)
    n = 800
    f = np.stack([rng.integers(0, 4, n), rng.integers(0, 3, n)], 1)
    centres = rng.normal(size=(4, 8)) * 3.0
    u = centres[f[:, 0]] + 0.1 * rng.normal(size=(n, 8))  # factor 0 planted, factor 1 absent
    res = probe.probe_accuracy(u, f, sigma=0.0, factor_names=["planted", "absent"])
    assert res["planted"]["chance"] == pytest.approx(0.25) and res["absent"]["n_values"] == 3
    assert res["planted"]["accuracy"] > 0.95
    assert abs(res["absent"]["accuracy"] - 1 / 3) < 0.12
    # Noise far above the cluster separation removes the planted information too.
    drowned = probe.probe_accuracy(u, f[:, :1], sigma=300.0)
    assert abs(drowned[0]["accuracy"] - 0.25) < 0.12


def test_probe_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="test_fraction"):
        probe.probe_accuracy(np.zeros((10, 2)), np.zeros(10, int), sigma=0.1, test_fraction=1.0)


# ----- retrieval -------------------------------------------------------------------------------
def brute_force(q, k_, k, similarity):
    if similarity == "cosine":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        kn = k_ / np.linalg.norm(k_, axis=1, keepdims=True)
        sim = qn @ kn.T
    else:
        d2 = ((q[:, None, :] - k_[None, :, :]) ** 2).sum(-1)
        sim = -d2 if similarity == "l2sq" else -np.sqrt(d2)
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(sim, idx, 1)


@pytest.mark.parametrize("similarity", ["l2sq", "l2", "cosine"])
def test_knn_equals_brute_force(similarity):
    rng = np.random.default_rng(4)
    keys = rng.normal(size=(300, 6)) + 2.0
    queries = rng.normal(size=(37, 6)) + 2.0
    idx, score = retrieval.knn(queries, keys, 5, similarity=similarity, chunk=8)
    ref_idx, ref_score = brute_force(queries, keys, 5, similarity)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(score, ref_score, rtol=1e-9, atol=1e-9)


def test_knn_exclude_self():
    rng = np.random.default_rng(5)
    u = rng.normal(size=(50, 3))
    idx, _ = retrieval.knn(u, u, 3, exclude_self=True)
    assert not np.any(idx == np.arange(50)[:, None])
    ref, _ = brute_force(u, u, 4, "l2sq")
    np.testing.assert_array_equal(idx, ref[:, 1:])  # the nearest of each point is itself
    sub = np.array([3, 7, 11])
    idx_sub, _ = retrieval.knn(u[sub], u, 3, exclude_self=sub)
    np.testing.assert_array_equal(idx_sub, idx[sub])
    with pytest.raises(ValueError, match="k must be"):
        retrieval.knn(u, u, 50, exclude_self=True)


def test_factor_agreement_identity_high_random_at_chance():
    rng = np.random.default_rng(6)
    n = 1000
    f = np.stack([rng.integers(0, 5, n), rng.integers(0, 2, n)], 1)
    identity = np.concatenate([np.eye(5)[f[:, 0]], np.eye(2)[f[:, 1]] * 0.1], 1) + 0.01 * rng.normal(size=(n, 7))
    high = retrieval.factor_agreement(identity, f, k=10)
    assert high[0]["agreement"] > 0.99 and high[1]["agreement"] > 0.99
    rand = retrieval.factor_agreement(rng.normal(size=(n, 7)), f, k=10, factor_names=["a", "b"])
    for name, col in zip(["a", "b"], f.T):
        p = np.bincount(col) / n
        assert rand[name]["chance"] == pytest.approx((p**2).sum(), abs=2e-3)
        assert abs(rand[name]["agreement"] - rand[name]["chance"]) < 0.05
    sub = retrieval.factor_agreement(identity, f, k=10, n_queries=100)
    assert sub[0]["agreement"] > 0.99


def test_class_retrieval_grid_shape_and_diagonal():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(4), 25)
    u = rng.normal(size=(100, 5)) + labels[:, None] * 0.5
    grid = retrieval.class_retrieval_grid(u, labels, seed=0)
    assert grid.shape == (4, 4)
    np.testing.assert_array_equal(labels[grid], np.tile(np.arange(4), (4, 1)))  # column = class
    grid2 = retrieval.class_retrieval_grid(u, labels, queries_per_class=2, seed=1)
    assert grid2.shape == (8, 4)
    # Row r's query is of class r // 2 and sits in that class's column.
    q = grid2[np.arange(8), np.arange(8) // 2]
    assert np.all(labels[q] == np.arange(8) // 2)
    # Off-diagonal entries are the nearest of their class to the query.
    d2 = ((u[q][:, None, :] - u[None, :, :]) ** 2).sum(-1)
    for r in range(8):
        for c in range(4):
            if c != r // 2:
                members = np.flatnonzero(labels == c)
                assert grid2[r, c] == members[d2[r, members].argmin()]


# ----- loss Monte Carlo (the ACC paper appendix D) --------------------------------------------------
def test_identical_points_give_log_set_size():
    loss = loss_mc.random_loss_curve([2, 5, 16], [1, 3], n_trials=20, scale=0.0)
    np.testing.assert_allclose(loss, np.log([[2, 5, 16], [2, 5, 16]]), atol=1e-5)


def test_larger_sets_have_larger_loss():
    loss = loss_mc.random_loss_curve([2, 8, 32], [1], n_trials=400, temperature=0.05)
    assert loss[0, 0] < loss[0, 1] < loss[0, 2]


def test_optimal_temperature_matches_figure_9():
    # Figure 9 quotes τ = 0.05 (n = 4, d = 1) and τ = 0.11 (d = 2) for uniform unit points.
    loss, tau = loss_mc.random_loss_curve([4], [1, 2], n_trials=2000, temperature="optimize",
                                          return_temperature=True)
    assert 0.03 < tau[0, 0] < 0.08 and 0.07 < tau[1, 0] < 0.16
    assert np.all(loss < math.log(4))  # better than no information at all


def test_loss_mc_rejects_bad_arguments():
    with pytest.raises(ValueError, match="set_sizes"):
        loss_mc.random_loss_curve([0], [1])
    with pytest.raises(ValueError, match="optimize"):
        loss_mc.random_loss_curve([2], [1], temperature="best")


def test_style_measures_on_hand_drawn_strokes():
    from acc_core.analysis.style import slant, stroke_thickness

    img = np.zeros((3, 28, 28), np.uint8)
    img[0, 4:24, 13:15] = 255  # upright, 2 px wide
    img[1, 4:24, 12:16] = 255  # upright, 4 px wide
    for r in range(4, 24):  # leaning right: x grows as y goes up (rows go down)
        c = 8 + (24 - r) // 2
        img[2, r, c:c + 2] = 255
    t = stroke_thickness(img)
    assert 1.5 < t[0] < 2.5 and 3.0 < t[1] < 4.5 and t[1] > t[0]
    s = slant(img)
    assert abs(s[0]) < 1e-9 and abs(s[1]) < 1e-9
    assert 0.3 < s[2] < 0.7  # half a pixel right per pixel up


def test_class_grid_first_queries_are_each_class_first_image():
    from acc_core.analysis.retrieval import class_retrieval_grid

    rng = np.random.default_rng(0)
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2])
    u = rng.normal(size=(len(labels), 3))
    grid = class_retrieval_grid(u, labels, first=True)
    assert grid[np.arange(3), np.arange(3)].tolist() == [1, 2, 0]  # first 0, first 1, first 2
    assert all(labels[grid[:, j]].tolist() == [j] * 3 for j in range(3))


def test_overlapping_single_thread_sections_restore_the_thread_count():
    """Two app sessions probing at once: interleaved enters and exits never leave the process
    at one thread."""
    import torch

    from acc_core.analysis.arrays import single_thread

    before = torch.get_num_threads()
    a, b = single_thread(), single_thread()
    a.__enter__()
    b.__enter__()
    assert torch.get_num_threads() == 1
    a.__exit__(None, None, None)  # the first one in leaves first
    assert torch.get_num_threads() == 1  # b still runs
    b.__exit__(None, None, None)
    assert torch.get_num_threads() == before

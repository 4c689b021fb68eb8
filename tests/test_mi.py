"""Known-answer tests for the mutual information estimators (acc_core.analysis.mi)."""

import math

import numpy as np
import pytest

from acc_core.analysis import mi
from acc_core.losses import loss_length_scale


def channel_mi_by_integration(centres, labels, sigma, axis=None):
    """I(X + N(0, σ²); G) for 1-D centres by a dense grid: Σ_g p_g ∫ p(t|g) log p(t|g)/p(t) dt."""
    centres = np.asarray(centres, dtype=np.float64)
    t = np.linspace(centres.min() - 12 * sigma, centres.max() + 12 * sigma, 100_001)
    comp = np.exp(-((t[None, :] - centres[:, None]) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2)
    p = comp.mean(0)
    total = 0.0
    for v in np.unique(labels):
        m = labels == v
        pc = comp[m].mean(0)
        integrand = np.where(pc > 0, pc * np.log(np.where(pc > 0, pc, 1.0) / p), 0.0)
        total += m.mean() * integrand.sum() * (t[1] - t[0])
    return total


def clusters(n_per=(60, 30, 10), dim=4, spread=0.01, sep=10.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per), dim)) * sep
    g = np.concatenate([np.full(n, i) for i, n in enumerate(n_per)])
    u = centres[g] + spread * rng.normal(size=(len(g), dim))
    return u, g


def test_entropy_of_known_distributions():
    assert mi.entropy([0, 1, 2, 3]) == pytest.approx(math.log(4))
    assert mi.entropy([5, 5, 5]) == pytest.approx(0.0)
    assert mi.entropy([0, 0, 0, 1]) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_separated_clusters_give_entropy_at_small_sigma_and_zero_at_large():
    u, g = clusters()
    values = mi.gaussian_channel_mi(u, g, [1e-3, 1e-1, 1e3, 1e5], n_samples=4000)
    h = mi.entropy(g)
    assert values[0] == pytest.approx(h, abs=1e-6)
    assert values[1] == pytest.approx(h, abs=1e-3)
    assert abs(values[2]) < 0.01 and abs(values[3]) < 1e-4


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_two_point_channel_matches_numerical_integration(sigma):
    centres, labels = np.array([-1.0, 1.0]), np.array([0, 1])
    exact = channel_mi_by_integration(centres, labels, sigma)
    est = mi.gaussian_channel_mi(centres[:, None], labels, [sigma], n_samples=40_000)[0]
    assert est == pytest.approx(exact, abs=0.02)


def test_unequal_classes_channel_matches_numerical_integration():
    centres = np.array([-1.0, 0.2, 1.0, 3.0, 3.5])
    labels = np.array([0, 1, 0, 2, 2])
    for sigma in (0.3, 1.0):
        exact = channel_mi_by_integration(centres, labels, sigma)
        est = mi.gaussian_channel_mi(centres[:, None], labels, [sigma], n_samples=40_000)[0]
        assert est == pytest.approx(exact, abs=0.02)


@pytest.mark.parametrize("dim", [64, 300])
def test_channel_in_high_dimensions_matches_its_one_dimensional_projection(dim):
    # Two points ±e along a random direction: noise orthogonal to e carries nothing, so the
    # answer is the 1-D channel's. dim=300 exercises the float64 path (‖ε‖²/2 > 80).
    rng = np.random.default_rng(1)
    e = rng.normal(size=dim)
    e /= np.linalg.norm(e)
    u = np.stack([-e, e]) + 5.0  # off the origin, too
    labels = np.array([0, 1])
    exact = channel_mi_by_integration(np.array([-1.0, 1.0]), labels, 1.0)
    est = mi.gaussian_channel_mi(u, labels, [1.0], n_samples=20_000)[0]
    assert est == pytest.approx(exact, abs=0.02)


def test_multi_factor_matches_per_factor_calls():
    rng = np.random.default_rng(2)
    f = np.stack([rng.integers(0, 3, 300), rng.integers(0, 5, 300), rng.integers(0, 2, 300)], 1)
    u = np.eye(5)[f[:, 1]] * 2.0 + 0.5 * f[:, :1] + 0.3 * rng.normal(size=(300, 5))
    sigmas = [0.05, 0.5, 5.0]
    multi = mi.gaussian_channel_mi_multi(u, f, sigmas, n_samples=500, seed=3)
    assert multi.shape == (3, 3)
    for k in range(3):
        single = mi.gaussian_channel_mi(u, f[:, k], sigmas, n_samples=500, seed=3)
        np.testing.assert_allclose(multi[k], single, atol=1e-6)  # float32 GEMM order
    assert multi[1, 0] > multi[2, 0] + 0.3  # factor 1 is planted strongly, factor 2 not at all


def test_chunking_does_not_change_the_estimate():
    u, g = clusters(spread=3.0)
    a = mi.gaussian_channel_mi(u, g, [0.5, 2.0], n_samples=300, seed=1)
    b = mi.gaussian_channel_mi_multi(u, g, [0.5, 2.0], n_samples=300, seed=1, chunk_elements=1000)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_noise_sweep_fields_and_defaults():
    u, g = clusters()
    f = np.stack([g, g % 2], 1)
    out = mi.noise_sweep(u, f, factor_names=["cluster", "parity"],
                         length_scale=loss_length_scale("l2sq", 4.0))
    assert out["mi"].shape == (2, 40) and len(out["sigmas"]) == 40
    assert out["length_scale"] == pytest.approx(2.0)
    assert out["sigmas"][0] <= 0.2 and out["sigmas"][-1] >= 20.0
    np.testing.assert_allclose(out["entropy"], [mi.entropy(g), mi.entropy(g % 2)])
    assert out["mi"][0, 0] == pytest.approx(out["entropy"][0], abs=1e-3)
    assert out["mi"][0, -1] < 0.05
    assert out["factor_names"] == ["cluster", "parity"]
    assert loss_length_scale("l2", 3.0) == 3.0
    assert loss_length_scale("cosine", 0.5) == pytest.approx(1.0)
    # without a length scale the default range still comes from the cloud itself
    assert mi.noise_sweep(u, g)["length_scale"] is None


def test_bad_inputs_say_what_to_do():
    u, g = clusters()
    with pytest.raises(ValueError, match="sigmas"):
        mi.gaussian_channel_mi(u, g, [0.0])
    with pytest.raises(ValueError, match="one row per embedding"):
        mi.gaussian_channel_mi(u, g[:-1], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        mi.gaussian_channel_mi(np.full((3, 2), np.nan), [0, 1, 0], [1.0])
    with pytest.raises(ValueError, match="similarity"):
        loss_length_scale("dot", 1.0)
    with pytest.raises(ValueError, match="length_scale"):
        mi.noise_sweep(u, g, length_scale=0.0)


def test_mine_agrees_with_gaussian_channel():
    # 1000 points at ±1 in 1-D, σ = 1: the paper's settings except 1,000 steps (the
    # 20,000-step figure on 64-D embeddings is in benchmarks/bench_mi.py).
    u = np.r_[-np.ones(500), np.ones(500)][:, None]
    g = np.r_[np.zeros(500, int), np.ones(500, int)]
    exact = mi.gaussian_channel_mi(u, g, [1.0], n_samples=20_000)[0]
    est = mi.mine_mi(u, g, sigma=1.0, steps=1000, n_eval=25_600, seed=0)
    assert est == pytest.approx(exact, abs=0.1)
    est_onehot = mi.mine_mi(u, g, sigma=1.0, steps=100, n_eval=2560, factor_encoding="onehot")
    assert math.isfinite(est_onehot)
    with pytest.raises(ValueError, match="factor_encoding"):
        mi.mine_mi(u, g, sigma=1.0, steps=1, factor_encoding="bits")


def test_histogram_mi_independent_vs_deterministic():
    rng = np.random.default_rng(4)
    n = 20_000
    u = rng.uniform(size=(n, 2))
    independent = rng.integers(0, 4, n)
    mid = (u.min(0) + u.max(0)) / 2  # the middle bin edge of each axis
    quadrant = (u[:, 0] >= mid[0]).astype(int) * 2 + (u[:, 1] >= mid[1]).astype(int)
    assert mi.histogram_mi(u, independent) < 0.02
    # 12 bins per axis (round(20000^(1/4))) split each axis at its middle: I = H(G).
    assert mi.histogram_mi(u, quadrant) == pytest.approx(mi.entropy(quadrant), abs=1e-9)
    with pytest.raises(ValueError, match="2-D"):
        mi.histogram_mi(rng.normal(size=(10, 3)), np.zeros(10, int))

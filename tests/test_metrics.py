"""Disentanglement metrics: known answers, the reference formulas transcribed, rotation, speed."""

import numpy as np
import pytest

from acc_core.analysis import metrics
from acc_core.analysis.metrics import _common

SIZES = (10, 10, 10, 8, 4, 15)  # the Shapes3D factor sizes


@pytest.fixture(scope="module")
def grid():
    rng = np.random.default_rng(0)
    n = 3000
    f = np.stack([rng.integers(0, s, n) for s in SIZES], 1)  # (N, K)
    perfect = f + 0.05 * rng.normal(size=f.shape)  # one factor per axis
    rot = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    return {"f": f, "perfect": perfect, "rotated": perfect @ rot,
            "random": rng.normal(size=(n, 6)), "rng": rng}


def test_perfect_code_scores_near_one(grid):
    f, z = grid["f"], grid["perfect"]
    assert metrics.mig(z, f) > 0.95
    d = metrics.dci(z, f)
    assert d["disentanglement"] > 0.95 and d["completeness"] > 0.95 and d["informativeness"] > 0.95
    me = metrics.modularity_explicitness(z, f)
    # one-vs-rest linear classifiers cannot cut a middle value out of one axis: AUC below 1
    assert me["modularity"] > 0.95 and me["explicitness"] > 0.9
    assert metrics.factor_vae(z, f)["score"] > 0.95
    assert metrics.beta_vae(z, f)["score"] > 0.95
    assert metrics.irs(z, f)["score"] > 0.9


def test_random_code_scores_near_zero(grid):
    f, z = grid["f"], grid["random"]
    assert metrics.mig(z, f) < 0.02
    assert metrics.sap(z, f) < 0.03
    d = metrics.dci(z, f)
    assert d["disentanglement"] < 0.1 and d["completeness"] < 0.1
    assert d["informativeness"] < 0.3
    assert metrics.modularity_explicitness(z, f)["explicitness"] < 0.6  # AUC of chance: 0.5
    assert metrics.factor_vae(z, f)["score"] < 0.35


def test_rotation_keeps_explicitness_loses_mig_and_ica_recovers_it(grid):
    f, z = grid["f"], grid["rotated"]
    kept = metrics.modularity_explicitness(grid["perfect"], f)["explicitness"]
    assert metrics.modularity_explicitness(z, f)["explicitness"] == pytest.approx(kept, abs=0.02)
    assert metrics.mig(z, f) < 0.3 < metrics.mig(grid["perfect"], f)
    # Tree classifiers are axis-bound: DCI informativeness drops too (why it is not in ROTATION_FREE).
    assert metrics.dci(z, f)["informativeness"] < 0.9
    assert "dci_informativeness" not in metrics.ROTATION_FREE
    # Uniform independent factors: ICA undoes the rotation, PCA (equal variances) need not.
    assert metrics.mig(metrics.align(z, "ica"), f) > 0.8


def test_duplicated_dimensions_lower_completeness_and_mig(grid):
    f, z = grid["f"], grid["perfect"]
    dup = np.concatenate([z, z + 1e-3 * grid["rng"].normal(size=z.shape)], 1)
    assert metrics.dci(dup, f)["completeness"] < metrics.dci(z, f)["completeness"] - 0.15
    assert metrics.mig(dup, f) < 0.2


def test_same_input_same_score(grid):
    f, z = grid["f"], grid["rotated"]
    a = metrics.all_metrics(z, f, align_to="pca")
    b = metrics.all_metrics(z.copy(), f.copy(), align_to="pca")
    assert a == b


# ----- the reference formulas, transcribed, on small hand-made inputs --------------------------
def test_discrete_mi_equals_sklearn():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 200), rng.integers(0, 3, 200)
    b[:100] = a[:100] % 3
    assert _common.discrete_mi(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-12)


def test_discretizer_matches_the_reference_histogram_discretizer():
    x = np.array([[0.0], [0.1], [0.5], [0.99], [1.0]])
    edges = np.histogram(x[:, 0], 20)[1][:-1]
    assert _common.discretize(x)[:, 0].tolist() == np.digitize(x[:, 0], edges).tolist()


def test_mig_by_hand():
    # Two dimensions, one factor: dim 0 equals the factor, dim 1 is its coarse half.
    f = np.repeat(np.arange(4), 25)[:, None]
    z = np.stack([f[:, 0], f[:, 0] // 2], 1).astype(float)
    h = np.log(4)
    m0, m1 = np.log(4), np.log(2)  # I(z0; f) = H(f), I(z1; f) = H(f // 2)
    assert metrics.mig(z, f) == pytest.approx((m0 - m1) / h)


def test_modularity_and_dci_by_hand():
    from acc_core.analysis.metrics import dci as _  # noqa: F401
    import importlib

    dci_mod = importlib.import_module("acc_core.analysis.metrics.dci")
    mod = importlib.import_module("acc_core.analysis.metrics.modularity")
    m = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])  # (D, K) mutual information
    # dim 0: 1 - 0/(1*1) = 1; dim 1: 1 - .25/(.25*1) = 0; dim 2 knows nothing: 0.
    assert mod.modularity_from_mi(m) == pytest.approx(1 / 3)
    r = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert dci_mod.disentanglement(r) == pytest.approx(1.0, abs=1e-6)
    assert dci_mod.completeness(r) == pytest.approx(1.0, abs=1e-6)
    r = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert dci_mod.disentanglement(r) == pytest.approx(0.0, abs=1e-6)


def test_irs_by_hand():
    # dim 0 is factor 0; dim 1 cycles 0..4 whatever the factors are.
    f = np.array([[a, b] for a in range(4) for b in range(4) for _ in range(5)])
    z = np.stack([f[:, 0].astype(float), np.zeros(len(f))], 1)
    z[:, 1] = np.arange(len(f)) % 5  # independent of both factors
    res = metrics.irs(z, f)
    assert res["active_dims"] == 2
    # dim 0: fixing factor 0 leaves no deviation -> IRS 1, max deviation 1.5; dim 1: within every
    # group the 99% quantile of |z - mean| is its max deviation 2 -> IRS 0. Weighted by 1.5 and 2.
    assert res["score"] == pytest.approx(1.5 / 3.5)


def test_one_factor_and_bad_input():
    f = np.repeat(np.arange(5), 40)[:, None]
    z = np.stack([f[:, 0] + 0.01 * np.arange(200) % 0.1, np.zeros(200) + np.arange(200) % 3], 1)
    out = metrics.all_metrics(z.astype(float), f)
    assert np.isnan(out["dci_disentanglement"]) and np.isnan(out["factor_vae"])
    assert np.isfinite(out["mig"]) and np.isfinite(out["explicitness"])
    with pytest.raises(ValueError, match="same N"):
        metrics.mig(np.zeros((30, 2)), np.zeros((20, 1), dtype=int))
    with pytest.raises(ValueError, match="alignment"):
        metrics.align(np.zeros((30, 2)), "varimax")
    with pytest.raises(ValueError, match="DCI mode"):
        metrics.dci(np.random.default_rng(0).normal(size=(30, 2)), np.zeros((30, 1), dtype=int) + np.arange(30)[:, None] % 2, mode="slow")


def test_scores_do_not_depend_on_the_number_of_threads(grid, monkeypatch):
    f, z = grid["f"][:1500], grid["rotated"][:1500]
    scores = []
    for threads in ("1", "2"):
        monkeypatch.setenv("ACC_METRIC_THREADS", threads)
        assert _common.workers() == int(threads)
        scores.append((metrics.sap(z, f), metrics.dci(z, f),
                       metrics.modularity_explicitness(z, f)))
    assert scores[0] == scores[1]

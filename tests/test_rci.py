"""Seed 004's method (acc_core.methods.rci): the divergences against numerical integration and
Monte Carlo, the top-k swap on hand-made divergences, the contrastive loss by hand, the
k-factor pairs' guarantees, the warm-up schedule, the colored digits, and the cached
invariance evaluation of a tiny run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from acc_core import data as data_sources
from acc_core.config import SetSpec, preset, validate
from acc_core.methods import rci
from acc_core.methods.rci_parts import (KFactorPairs, class_mean_posterior, gaussian_js, gaussian_kl,
                                        supervised_contrastive, swap, topk_swap_mask)

torch.set_num_threads(min(2, torch.get_num_threads()))


def t(*v):
    return torch.tensor(v, dtype=torch.float64)


def dense(m1, v1, m2, v2):
    """KL(p || q) and JSD(p, q) by the trapezoid rule on 4 million points, in log space."""
    lo = min(m1 - 40 * math.sqrt(v1), m2 - 40 * math.sqrt(v2))
    hi = max(m1 + 40 * math.sqrt(v1), m2 + 40 * math.sqrt(v2))
    x = np.linspace(lo, hi, 4_000_001)
    lp = -0.5 * (np.log(2 * np.pi * v1) + (x - m1) ** 2 / v1)
    lq = -0.5 * (np.log(2 * np.pi * v2) + (x - m2) ** 2 / v2)
    lm = np.logaddexp(lp, lq) - np.log(2)
    trap = np.trapezoid if hasattr(np, "trapezoid") else np.trapz
    kl = trap(np.exp(lp) * (lp - lq), x)
    js = 0.5 * trap(np.exp(lp) * (lp - lm) + np.exp(lq) * (lq - lm), x)
    return kl, js


CASES = [(0.0, 1.0, 0.0, 1.0), (0.0, 1.0, 1.0, 1.0), (0.0, 1.0, 3.0, 0.5), (0.2, 0.01, -0.3, 4.0),
         (0.0, 1e-4, 0.0, 1.0), (0.0, 100.0, 0.0, 0.01), (1.0, 1e-3, 1.05, 1e-3), (2.0, 0.05, 0.0, 1.0),
         (0.0, 1.0, 40.0, 1.0), (0.0, 1e-6, 0.0, 100.0)]


@pytest.mark.parametrize("case", CASES)
def test_kl_and_js_against_dense_integration(case):
    m1, v1, m2, v2 = case
    kl_ref, js_ref = dense(*case)
    args = (t(m1), t(math.log(v1)), t(m2), t(math.log(v2)))
    assert gaussian_kl(*args).item() == pytest.approx(kl_ref, rel=1e-6, abs=1e-9)
    assert gaussian_js(*args).item() == pytest.approx(js_ref, abs=3e-7)
    assert 0.0 <= gaussian_js(*args).item() <= math.log(2) + 1e-12


def test_js_against_monte_carlo_and_its_symmetry():
    rng = np.random.default_rng(0)
    m1, s1, m2, s2 = 0.3, 0.7, -0.5, 1.6
    n = 400_000

    def logpdf(x, m, s):
        return -0.5 * np.log(2 * np.pi * s * s) - (x - m) ** 2 / (2 * s * s)

    def kl_to_mix(x):
        lp, lq = logpdf(x, m1, s1), logpdf(x, m2, s2)
        return lp, lq, np.logaddexp(lp, lq) - np.log(2)

    lp, _, lm = kl_to_mix(rng.normal(m1, s1, n))
    _, lq, lm2 = kl_to_mix(rng.normal(m2, s2, n))
    mc = 0.5 * ((lp - lm).mean() + (lq - lm2).mean())
    a = (t(m1), t(2 * math.log(s1)), t(m2), t(2 * math.log(s2)))
    got = gaussian_js(*a).item()
    assert got == pytest.approx(mc, abs=4e-3)  # MC standard error about 1e-3
    assert gaussian_js(a[2], a[3], a[0], a[1]).item() == pytest.approx(got, abs=1e-12)


def test_kl_closed_form_known_value():
    # KL(N(1, 2) || N(0, 1)) = 0.5 (2 + 1 - 1 - ln 2) = 1 - ln(2) / 2
    assert gaussian_kl(t(1.0), t(math.log(2)), t(0.0), t(0.0)).item() == pytest.approx(1 - math.log(2) / 2)


# ----- the top-k swap ------------------------------------------------------------------------------------------
def test_topk_swap_keeps_the_k_most_different_dimensions():
    div = torch.tensor([[0.1, 5.0, 0.3, 9.0, 0.2, 0.0],
                        [4.0, 3.0, 2.0, 1.0, 0.5, 0.25]])
    k = torch.tensor([2, 1])
    # everything but the top-k: row 0 keeps dims 3 and 1, row 1 keeps dim 0
    full = topk_swap_mask(div, k, torch.tensor([6, 6]))
    assert full.tolist() == [[True, False, True, False, True, True],
                             [False, True, True, True, True, True]]
    # warm-up by amount: only the n most similar are swapped
    few = topk_swap_mask(div, k, torch.tensor([2, 1]))
    assert few.tolist() == [[True, False, False, False, False, True],  # 0.0 and 0.1
                            [False, False, False, False, False, True]]
    # n_swap = 0 swaps nothing; ties go to the lower index
    assert not topk_swap_mask(div, k, torch.tensor([0, 0])).any()
    tie = topk_swap_mask(torch.zeros(1, 4), torch.tensor([1]), torch.tensor([2]))
    assert tie.tolist() == [[True, True, False, False]]


def test_swap_exchanges_only_the_masked_dimensions():
    a, b = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 20.0, 30.0]])
    a2, b2 = swap(a, b, torch.tensor([[True, False, True]]))
    assert a2.tolist() == [[10, 2, 30]] and b2.tolist() == [[1, 20, 3]]


def test_class_mean_posterior_by_hand():
    mu = torch.tensor([[0.0], [2.0], [5.0]])
    logvar = torch.log(torch.tensor([[1.0], [3.0], [7.0]]))
    m, lv = class_mean_posterior(mu, logvar, torch.tensor([0, 0, 1]))
    assert m[:, 0].tolist() == pytest.approx([1.0, 1.0, 5.0])
    assert lv.exp()[:, 0].tolist() == pytest.approx([2.0, 2.0, 7.0])  # mean of the variances


def test_supervised_contrastive_by_hand():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    tau = 0.5
    # anchor 0: positive 1 (sim 1), negative 2 (sim 0): -log(e^2 / (e^2 + e^0)); same for anchor 1;
    # anchor 2 has no positive and is skipped
    want = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert supervised_contrastive(z, labels, tau).item() == pytest.approx(want)
    # scale does not matter (normalised), and clustered classes score lower than mixed ones
    assert supervised_contrastive(3 * z, labels, tau).item() == pytest.approx(want)
    mixed = supervised_contrastive(z, torch.tensor([0, 1, 0]), tau).item()
    assert mixed > want


# ----- pairs and schedule ------------------------------------------------------------------------------------------
def test_pairs_differ_in_exactly_k_active_factors():
    ds = data_sources.load("shapes3d-procedural", size=32)
    pairs = KFactorPairs(ds, ("wall_hue",), {"object_hue": (9,)})
    assert pairs.max_k == 5
    idx, k = pairs.sample(np.random.default_rng(0), 2000, 3)
    f1, f2 = ds.factors(idx[0]), ds.factors(idx[1])
    changed = (f1 != f2)
    assert (changed.sum(1) == k).all() and set(k.tolist()) == {1, 2, 3}
    assert not changed[:, ds.factor_index("wall_hue")].any()  # the class is shared
    assert not (np.concatenate([f1, f2])[:, ds.factor_index("object_hue")] == 9).any()
    # every active factor gets changed sometimes
    assert changed.sum(0)[[i for i, n in enumerate(ds.factor_names) if n != "wall_hue"]].min() > 100
    again, _ = pairs.sample(np.random.default_rng(0), 2000, 3)
    np.testing.assert_array_equal(idx, again)  # the step's generator decides everything


def test_labelled_pairs_on_colored_and_plain_digits():
    ds = data_sources.load("digits-colored")
    pairs = KFactorPairs(ds, ("digit",), {"background_color": (3, 4, 5)})
    idx, k = pairs.sample(np.random.default_rng(1), 500, 2)
    f1, f2 = ds.factors(idx[0]), ds.factors(idx[1])
    assert ((f1 != f2).sum(1) == k).all() and (f1[:, 0] == f2[:, 0]).all()
    assert f2[:, 2].max() <= 2 and f1[:, 2].max() <= 2
    digits = data_sources.load("digits")
    plain = KFactorPairs(digits, ("digit",), {"digit": (9,)})
    idx, k = plain.sample(np.random.default_rng(2), 300, 3)
    f = digits.factors(idx.ravel()).reshape(2, -1)
    assert plain.max_k == 0 and (k == 0).all() and (f[0] == f[1]).all() and (f != 9).all()
    assert (idx[0] != idx[1]).all()  # two different images of the digit


def test_warmup_grows_k_and_the_swapped_dimensions():
    cfg = preset("quick", "shapes3d-procedural", method="rci")
    steps = cfg.train.steps
    assert rci.schedule(cfg, 1, 5) == (1, 1)
    assert rci.schedule(cfg, steps // 2, 5) == (5, 10) == rci.schedule(cfg, steps, 5)
    mid = rci.schedule(cfg, steps // 4, 5)
    assert 1 < mid[0] < 5 and 1 < mid[1] < 10
    off = cfg.replace(params=dataclasses.replace(cfg.params, warmup_difficulty=False, warmup_amount=False))
    assert rci.schedule(off, 1, 5) == (5, 10)


# ----- the colored digits --------------------------------------------------------------------------------------------
def test_colored_digits_layout_and_colours():
    ds = data_sources.load("digits-colored")
    base = data_sources.load("digits")
    assert len(ds) == 36 * len(base) and ds.image_shape == (28, 28, 3)
    i = 7 * 36 + 2 * 6 + 4  # base image 7, digit colour 2, background 4
    assert ds.factors([i]).tolist() == [[base.factors([7])[0, 0], 2, 4]]
    img = ds.images([i])[0].astype(float) / 255
    gray = base.images([7])[0, :, :, 0].astype(float) / 255
    from acc_core.data.digits_colored import BACKGROUND_COLORS, DIGIT_COLORS

    want = gray[..., None] * np.array(DIGIT_COLORS[2][1]) + (1 - gray[..., None]) * np.array(BACKGROUND_COLORS[4][1])
    np.testing.assert_allclose(img, want, atol=1 / 255)
    assert data_sources.manifest("digits-colored")["factors"][2]["size"] == 6


# ----- configs and the cached evaluation ----------------------------------------------------------------------------
def test_presets_and_clear_errors():
    for source in ("shapes3d-procedural", "digits"):
        for name in ("quick", "paper"):
            validate(preset(name, source, method="rci"))
    cfg = preset("quick", "shapes3d-procedural", method="rci")
    with pytest.raises(ValueError, match="unknown divergence"):
        validate(cfg.replace(params=dataclasses.replace(cfg.params, divergence="l2")))
    with pytest.raises(ValueError, match="predictive_dim \\+ nuisance_dim"):
        validate(cfg.replace(model=dataclasses.replace(cfg.model, embedding_dim=10)))
    ds = data_sources.load("shapes3d-procedural", size=32)
    with pytest.raises(ValueError, match="needs a class"):
        cfg.method.check(cfg.replace(set_a=SetSpec(inactive=())), ds)


def test_a_tiny_invariance_run_caches_its_accuracies(tmp_path, acc_home):
    from acc_core import rundir
    from acc_core.methods.rci_eval import invariance_scenarios
    from acc_core.train import train

    cfg = invariance_scenarios()["digits-colored-invariance-rci"][0]
    cfg = cfg.replace(params=dataclasses.replace(cfg.params, batch_size=8, divergence="js"),
                      train=dataclasses.replace(cfg.train, steps=3, snapshot_every=3,
                                                checkpoint_every=3, probe_size=40))
    assert train(cfg, tmp_path / "run", device="cpu")["status"] == "done"
    ev = rundir.read_model_eval(tmp_path / "run")
    s = ev["scores"]
    assert s["groups_unseen"] == s["groups_seen"] == 30  # digit x 3 backgrounds, new / trained
    for split in ("seen", "unseen"):
        assert 0 <= s[f"worst_group_accuracy_{split}"] <= s[f"accuracy_{split}"] <= 1
    grid = ev["images"]["zp_transfer_grid"]
    assert grid.shape == (5, 5, 28, 28, 3) and grid.dtype == np.uint8
    log = rundir.read_log(tmp_path / "run")
    assert all(r["k"] >= 1 for r in log if "k" in r)

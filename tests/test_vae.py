"""The VAE methods (acc_core.methods.vae, acc_core.nets_vae): known answers computed by hand
on small tensors, the samplers' guarantees, and tiny end-to-end runs through the one loop."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from acc_core import rundir
from acc_core.config import SetSpec, preset, validate
from acc_core.methods import vae
from acc_core.nets_vae import GaussianVAE, bernoulli_reconstruction, kl_to_standard_normal

torch.set_num_threads(min(2, torch.get_num_threads()))


def t(*v):
    return torch.tensor(v, dtype=torch.float64)


# ----- closed forms --------------------------------------------------------------------------------
def test_kl_per_dim_known_values():
    # KL(N(1, 2) || N(0, 1)) = 0.5 (2 + 1 - 1 + 0 - ln 2) = 1 - ln(2) / 2
    # KL(N(0, 1) || N(2, 4)) = 0.5 (1/4 + 4/4 - 1 + ln 4 - 0) = 0.125 + ln 2
    got = vae.kl_per_dim(t(1.0, 0.0), t(math.log(2), 0.0), t(0.0, 2.0), t(0.0, math.log(4)))
    assert got.tolist() == pytest.approx([1 - math.log(2) / 2, 0.125 + math.log(2)], rel=1e-12)
    # identical distributions: 0
    assert vae.kl_per_dim(t(0.3), t(-1.0), t(0.3), t(-1.0)).item() == pytest.approx(0.0, abs=1e-15)


def test_kl_per_dim_matches_numeric_integral():
    mu1, v1, mu2, v2 = 0.7, 0.5, -0.4, 1.8
    x = np.linspace(-12, 12, 200_001)
    p = np.exp(-(x - mu1) ** 2 / (2 * v1)) / np.sqrt(2 * np.pi * v1)
    q = np.exp(-(x - mu2) ** 2 / (2 * v2)) / np.sqrt(2 * np.pi * v2)
    numeric = np.trapezoid(p * np.log(p / q), x) if hasattr(np, "trapezoid") else np.trapz(p * np.log(p / q), x)
    got = vae.kl_per_dim(t(mu1), t(math.log(v1)), t(mu2), t(math.log(v2))).item()
    assert got == pytest.approx(numeric, rel=1e-6)


def test_kl_to_standard_normal_and_symmetric_delta():
    # KL(N(1, e) || N(0, 1)) = 0.5 (1 + e - 1 - 1) = (e - 1) / 2
    assert kl_to_standard_normal(t(1.0), t(1.0)).item() == pytest.approx((math.e - 1) / 2)
    a = (t(1.0), t(math.log(2)), t(0.0), t(0.0))
    sym = vae.pair_deltas(*a, kind="symmetric_kl").item()
    # KL12 = 1 - ln2/2; KL21 = 0.5 (1/2 + 1/2 - 1 + ln 2) = ln2/2; mean = 0.5
    assert sym == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown delta"):
        vae.pair_deltas(*a, kind="l2")


def test_bernoulli_reconstruction_sums_pixels():
    # logits 0 -> p = 1/2: BCE = ln 2 per pixel whatever the target; 2 channels x 2 x 2 pixels
    x = torch.rand(3, 2, 2, 2)
    assert bernoulli_reconstruction(torch.zeros(3, 2, 2, 2), x).tolist() == pytest.approx([8 * math.log(2)] * 3)


def test_adaptive_threshold_mask_by_hand():
    # row 0: max 5.0, min 0.1 -> tau 2.55; shared where delta < tau
    # row 1: all equal -> all shared (the reference's zero-width histogram)
    delta = torch.tensor([[0.1, 5.0, 0.2, 3.0, 2.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    mask = vae.adaptive_threshold_mask(delta)
    assert mask.tolist() == [[True, False, True, False, True], [True] * 5]


def test_average_posteriors_gvae_and_mlvae_by_hand():
    mu1, lv1 = t(1.0, 5.0), t(0.0, 0.0)  # var 1
    mu2, lv2 = t(3.0, -5.0), t(math.log(3), 0.0)  # var 3
    mask = torch.tensor([True, False])
    # gvae: mean (1 + 3) / 2 = 2, var (1 + 3) / 2 = 2
    m1, l1, m2, l2 = vae.average_posteriors(mu1, lv1, mu2, lv2, mask, "gvae")
    assert m1[0].item() == pytest.approx(2.0) and m2[0].item() == pytest.approx(2.0)
    assert l1[0].exp().item() == pytest.approx(2.0) and l2[0].exp().item() == pytest.approx(2.0)
    assert (m1[1].item(), m2[1].item(), l1[1].item(), l2[1].item()) == (5.0, -5.0, 0.0, 0.0)
    # mlvae: precision 1 + 1/3 = 4/3 -> var 3/4; mean 3/4 (1 * 1 + 3 * 1/3) = 1.5
    m1, l1, m2, l2 = vae.average_posteriors(mu1, lv1, mu2, lv2, mask, "mlvae")
    assert m1[0].item() == pytest.approx(1.5) and m2[0].item() == pytest.approx(1.5)
    assert l1[0].exp().item() == pytest.approx(0.75) and l2[0].exp().item() == pytest.approx(0.75)
    assert (m1[1].item(), m2[1].item()) == (5.0, -5.0)
    with pytest.raises(ValueError, match="unknown average"):
        vae.average_posteriors(mu1, lv1, mu2, lv2, mask, "median")


def test_product_of_gaussians_group_by_hand():
    # experts N(0, 1), N(2, 2), N(4, 4): precisions 1, 1/2, 1/4 -> 7/4 -> var 4/7;
    # mean (0 * 1 + 2 / 2 + 4 / 4) / (7/4) = 8/7. Two groups (G, S, D) = (2, 3, 1).
    mu = torch.tensor([[[0.0], [2.0], [4.0]], [[1.0], [1.0], [1.0]]], dtype=torch.float64)
    lv = torch.log(torch.tensor([[[1.0], [2.0], [4.0]], [[2.0], [2.0], [2.0]]], dtype=torch.float64))
    m, l = vae.product_of_gaussians(mu, lv, dim=1)
    assert m.shape == (2, 1)
    assert m[0, 0].item() == pytest.approx(8 / 7) and l[0, 0].exp().item() == pytest.approx(4 / 7)
    # three equal experts N(1, 2): mean 1, var 2/3
    assert m[1, 0].item() == pytest.approx(1.0) and l[1, 0].exp().item() == pytest.approx(2 / 3)


# ----- networks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,channels", [(64, 3), (32, 3), (28, 1)])
def test_networks_any_square_size(size, channels):
    torch.manual_seed(0)
    net = GaussianVAE(10, channels, size)
    x = torch.rand(2, channels, size, size)
    mu, lv = net.encode(x)
    assert mu.shape == lv.shape == (2, 10)
    assert net.decode(mu).shape == (2, channels, size, size)
    assert net.encoder.fc[0].in_features == 64 * (math.ceil(size / 16)) ** 2  # 1024 at 64 px


# ----- samplers ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shapes():
    from acc_core import data

    return data.load("shapes3d-procedural", size=16)


def test_pair_sampler_keeps_inactive_changes_active(shapes):
    held = {"object_hue": (0, 1)}
    s = vae.PairSampler(shapes, ("wall_hue", "shape"), held_out=held)
    pairs = s.sample(np.random.default_rng(3), 500)
    assert pairs.shape == (2, 500) and pairs.dtype == np.int64
    f1, f2 = shapes.factors(pairs[0]), shapes.factors(pairs[1])
    names = shapes.factor_names
    ina = [names.index("wall_hue"), names.index("shape")]
    act = [k for k in range(len(names)) if k not in ina]
    assert (f1[:, ina] == f2[:, ina]).all()  # inactive factors kept
    n_changed = (f1[:, act] != f2[:, act]).sum(1)
    assert (n_changed >= 1).all()  # at least one active factor really changed
    assert set(np.unique(n_changed)) == set(range(1, len(act) + 1))  # every subset size occurs
    hue = names.index("object_hue")
    assert not np.isin(np.concatenate([f1[:, hue], f2[:, hue]]), (0, 1)).any()  # held out
    again = s.sample(np.random.default_rng(3), 500)
    assert (again == pairs).all()  # deterministic from the rng
    assert not (s.sample(np.random.default_rng(4), 500) == pairs).all()


def test_pair_sampler_labelled_same_label_other_image():
    from acc_core import data

    digits = data.load("digits")
    s = vae.PairSampler(digits, ("digit",), held_out={"digit": (9,)})
    pairs = s.sample(np.random.default_rng(0), 200)
    f1, f2 = digits.factors(pairs[0]), digits.factors(pairs[1])
    assert (f1 == f2).all() and (pairs[0] != pairs[1]).all() and (f1 != 9).all()


def test_batchers_shapes_and_determinism(shapes):
    cfgs = {m: preset("quick", "shapes3d-procedural", method=m) for m in vae.METHODS}
    want = {"beta_vae": (64,), "ml_vae": (8, 8), "ada_gvae": (2, 32)}
    for m, cfg in cfgs.items():
        draw = cfg.method.batcher(cfg, shapes)
        a, b = draw(np.random.default_rng([0, 5]), 5), draw(np.random.default_rng([0, 5]), 5)
        assert a["indices"].shape == want[m] and (a["indices"] == b["indices"]).all()
    # ML-VAE groups hold set A's inactive factor fixed
    cfg = cfgs["ml_vae"]
    idx = cfg.method.batcher(cfg, shapes)(np.random.default_rng(1), 1)["indices"]
    wall = shapes.factors(idx.ravel())[:, shapes.factor_index("wall_hue")].reshape(idx.shape)
    assert (wall == wall[:, :1]).all()


def test_check_and_validate_messages(shapes):
    for m in ("ml_vae", "ada_gvae"):
        cfg = preset("quick", "shapes3d-procedural", method=m)
        with pytest.raises(ValueError, match="inactive in set A"):
            cfg.method.check(cfg.replace(set_a=SetSpec(inactive=())), shapes)
        with pytest.raises(ValueError, match="active"):
            cfg.method.check(cfg.replace(set_a=SetSpec(inactive=shapes.factor_names)), shapes)
        cfg.method.check(cfg, shapes)
    beta = preset("quick", "shapes3d-procedural", method="beta_vae")
    beta.method.check(beta.replace(set_a=SetSpec(inactive=())), shapes)  # any scenario
    assert beta.method.supervision_text(beta).startswith("Unsupervised: it ignores the scenario's sets")
    bad = beta.replace(model=dataclasses.replace(beta.model, embedding_dim=8))
    with pytest.raises(ValueError, match="latent size"):
        validate(bad)
    ada = preset("quick", "shapes3d-procedural", method="ada_gvae")
    with pytest.raises(ValueError, match="unknown average"):
        validate(ada.replace(params=dataclasses.replace(ada.params, average="mean")))
    assert ada.method.length_scale(ada, "mean") is None


# ----- tiny runs through the one loop ---------------------------------------------------------------
def tiny(method: str, source: str = "shapes3d-procedural", seed: int = 0):
    cfg = preset("quick", source, method=method)
    train = dataclasses.replace(cfg.train, steps=4, snapshot_every=2, checkpoint_every=2,
                                probe_size=48, seed=seed, set_size=4, pairs_per_step=2)
    data = dataclasses.replace(cfg.data, image_size=16) if source.startswith("shapes3d") else cfg.data
    params = cfg.params
    if hasattr(params, "batch_size"):
        params = dataclasses.replace(params, batch_size=6)
    return cfg.replace(train=train, data=data, params=params)


@pytest.mark.parametrize("method,source", [("beta_vae", "shapes3d-procedural"),
                                           ("ml_vae", "shapes3d-procedural"),
                                           ("ada_gvae", "shapes3d-procedural"),
                                           ("ada_gvae", "digits")])
def test_tiny_training_run(tmp_path, method, source):
    from acc_core.train import train

    cfg = tiny(method, source)
    out = train(cfg, tmp_path / "run", device="cpu")
    assert out["status"] == "done" and out["step"] == 4
    assert rundir.snapshot_steps(tmp_path / "run") == [0, 2, 4]
    snap = rundir.load_snapshot(tmp_path / "run", 4)
    reps = cfg.method.representations
    dims = {"mean": 10, "style": cfg.params.__dict__.get("style_dim"), "group": cfg.params.__dict__.get("group_dim")}
    for r in reps:
        codes = rundir.snapshot_codes(snap, r, reps)
        assert codes.shape == (48, dims[r]) and np.isfinite(codes).all()
    ev = rundir.read_model_eval(tmp_path / "run")
    size, channels = (16, 3) if source.startswith("shapes3d") else (28, 1)
    assert ev["images"]["traversal"].shape == (10, 7, size, size, channels)
    assert ev["images"]["traversal"].dtype == np.uint8
    assert len(ev["scores"]["kl_per_dim"]) == 10 and ev["scores"]["reconstruction_bce"] > 0
    log = rundir.read_log(tmp_path / "run")
    assert all(math.isfinite(r["loss"]) and "rec" in r for r in log)


def test_ml_vae_mean_is_style_then_group(tmp_path):
    from acc_core.train import load_model, train

    cfg = tiny("ml_vae")
    train(cfg, tmp_path / "run", device="cpu")
    model, _ = load_model(tmp_path / "run")
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        mean, style, group = (cfg.method.encode(model, x, r) for r in ("mean", "style", "group"))
    assert style.shape == (3, cfg.params.style_dim) and group.shape == (3, cfg.params.group_dim)
    assert torch.equal(mean, torch.cat([style, group], 1))


def test_two_tiny_runs_identical_weights(tmp_path):
    from acc_core.train import train

    cfg = tiny("ada_gvae", seed=7)
    train(cfg, tmp_path / "a", device="cpu")
    train(cfg, tmp_path / "b", device="cpu")
    wa = rundir.load_checkpoint(rundir.checkpoint_path(tmp_path / "a"))["model"]
    wb = rundir.load_checkpoint(rundir.checkpoint_path(tmp_path / "b"))["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)

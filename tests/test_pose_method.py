"""The pose-transfer scenario (acc_core.methods.acc_pose): its sets, the real-image titration,
the background swap, the lr schedule, and one tiny run trained, resumed and evaluated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from acc_core import data as data_sources
from acc_core import rundir
from acc_core.config import RunConfig, preset, validate
from acc_core.methods.acc_pose import (HalvingAdam, PoseParams, pose_batcher, real_fraction_at,
                                       swap_backgrounds)


def tiny(steps: int = 4, **params) -> RunConfig:
    """The quick preset at 16 px, sets of 8, one pair, a few probe images."""
    cfg = preset("quick", "pose-procedural", method="acc_pose")
    every = max(1, steps // 2)
    return cfg.replace(
        data=dataclasses.replace(cfg.data, image_size=16),
        model=dataclasses.replace(cfg.model, embedding_dim=8),
        train=dataclasses.replace(cfg.train, steps=steps, set_size=8, pairs_per_step=1,
                                  snapshot_every=every, checkpoint_every=every, probe_size=32, seed=1),
        params=dataclasses.replace(cfg.params, **params))


def test_presets_validate():
    for name in ("quick", "paper"):
        cfg = preset(name, "pose-procedural", method="acc_pose")
        validate(cfg)
        assert cfg.train.similarity == "cosine" and cfg.train.temperature == 0.1
        assert cfg.train.double_augmentation and cfg.train.pairs_per_step >= 2
        assert RunConfig.from_json(cfg.canonical_json()).run_id == cfg.run_id
    paper = preset("paper", "pose-procedural", method="acc_pose")
    assert paper.train.steps == 40_000 and paper.train.pairs_per_step == 4
    assert paper.params.titration == "linear" and paper.params.real_fraction == 0.10
    with pytest.raises(ValueError, match="titration"):
        validate(tiny(titration="sometimes"))
    with pytest.raises(ValueError, match="not both 0"):
        validate(tiny(acc_weight=0.0))


def test_titration_schedules():
    step = PoseParams()  # section 4.3: 5.5% from half-way
    assert real_fraction_at(step, 50, 100) == 0 and real_fraction_at(step, 51, 100) == 0.055
    lin = PoseParams(real_fraction=0.1, titration="linear", real_start=0.0, titration_every=4000)
    got = [real_fraction_at(lin, s, 40_000) for s in (1, 3999, 4000, 20_000, 39_999, 40_000)]
    np.testing.assert_allclose(got, [0, 0, 0.01, 0.05, 0.09, 0.1])


def test_sets_follow_the_scenario():
    cfg = tiny(steps=100)
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, set_size=32, pairs_per_step=4))
    ds = data_sources.load_for(cfg.data)
    draw = pose_batcher(cfg, ds)
    early = draw(np.random.default_rng(0), 10)
    assert early["indices"].shape == (2, 4, 32) and "angles" not in early  # no pose labels
    f = ds.factors(early["indices"].ravel()).reshape(2, 4, 32, 5)
    assert (f[..., 4] == 0).all()  # purely synthetic before half-way
    for a in f[0]:  # set A: one instance, distinct viewpoints
        assert len({tuple(r) for r in a[:, :2]}) == 1 and len({tuple(r) for r in a[:, 2:4]}) == 32
    late = [draw(np.random.default_rng(s), 60) for s in range(40)]
    fl = np.concatenate([ds.factors(b["indices"][1].ravel()) for b in late])
    assert 0.03 < fl[:, 4].mean() < 0.08  # about 5.5% real in set B
    assert all((ds.factors(b["indices"][0].ravel())[:, 4] == 0).all() for b in late)
    assert fl[:, 1].max() <= 9  # held-out test instances are never drawn
    assert (late[0]["synthetic"] == (ds.factors(late[0]["indices"].ravel())[:, 4] == 0).reshape(2, 4, 32)).all()
    reg_cfg = tiny(steps=100, regression_weight=1.0)
    reg_cfg = reg_cfg.replace(train=dataclasses.replace(reg_cfg.train, set_size=32, pairs_per_step=4))
    reg = pose_batcher(reg_cfg, ds)(np.random.default_rng(1), 80)
    real = ~reg["synthetic"]
    assert real.any() and (reg["angles"][real] == 0).all()  # real images carry no pose


def test_background_swap_paints_only_synthetic_backgrounds():
    ds = data_sources.load("pose-procedural", size=16)
    idx = ds.index_of([[0, 1, 3, 2, 0], [0, 1, 3, 2, 1]])
    x = torch.from_numpy(ds.images(idx)).permute(0, 3, 1, 2).float() / 255
    out = swap_backgrounds(x, torch.tensor([True, False]), torch.Generator().manual_seed(0))
    assert torch.equal(out[1], x[1])
    changed = (out[0] != x[0]).any(0)
    plain = ((x[0] - 0.88).abs() < 0.02).all(0)
    assert changed.any() and not (changed & ~plain).any()


def test_swap_starts_when_asked(monkeypatch):
    import acc_core.methods.acc_pose as mod

    calls = []
    monkeypatch.setattr(mod, "swap_backgrounds", lambda x, syn, gen, share: calls.append(share) or x)
    cfg = tiny(steps=10, background_swap=0.5, swap_ramp=0.0)
    ds = data_sources.load_for(cfg.data)
    torch.manual_seed(0)
    model = cfg.method.build(cfg, ds)
    from acc_core.train import make_batch

    draw = cfg.method.batcher(cfg, ds)
    for step in (5, 6):
        batch = make_batch(draw, ds, cfg, np.random.default_rng(step), step, torch.device("cpu"))
        cfg.method.loss(model, batch, cfg, torch.Generator().manual_seed(step), step)
        assert len(calls) == (0 if step == 5 else 2)  # two views from step 6 on
    assert calls == [1.0, 1.0]


def test_swap_share_ramps_from_where_the_swap_starts():
    from acc_core.methods.acc_pose import PoseParams, swap_share

    ramp = PoseParams(background_swap=0.5, swap_ramp=0.25)  # starts at step 50 of 100, full at 75
    assert [swap_share(ramp, s, 100) for s in (50, 51, 60, 75, 100)] == [0.0, 0.04, 0.4, 1.0, 1.0]
    start = PoseParams(background_swap=True, swap_ramp=0.5)
    assert swap_share(start, 1, 100) == 0.02 and swap_share(start, 50, 100) == 1.0
    assert swap_share(PoseParams(background_swap=False, swap_ramp=0.5), 80, 100) == 0.0
    assert swap_share(PoseParams(background_swap=True), 1, 100) == 1.0


def test_a_swap_share_paints_about_that_share_of_synthetic_images():
    ds = data_sources.load("pose-procedural", size=16)
    idx = ds.index_of([[0, 1, 3, 2, 0]] * 400)
    x = torch.from_numpy(ds.images(idx)).permute(0, 3, 1, 2).float() / 255
    out = swap_backgrounds(x, torch.ones(400, dtype=torch.bool), torch.Generator().manual_seed(0), 0.25)
    painted = (out != x).flatten(1).any(1).float().mean()
    assert 0.18 < float(painted) < 0.32


def test_lr_halves_on_schedule():
    w = torch.nn.Parameter(torch.zeros(1))
    opt = HalvingAdam([w], lr=1.0, every=3)
    lrs = []
    for _ in range(7):
        w.grad = torch.ones(1)
        opt.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("params", [dict(), dict(regression_weight=1.0)])
def test_tiny_run_trains_resumes_and_evaluates(params, tmp_path, acc_home):
    from acc_core.train import train

    cfg = tiny(**params)
    ref = tmp_path / "ref"
    assert train(cfg, ref, device="cpu")["status"] == "done"
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2

    part = tmp_path / "part"
    assert train(cfg, part, device="cpu", should_stop=stop)["status"] == "cancelled"
    assert train(cfg, part, device="cpu")["status"] == "done"
    a = rundir.load_checkpoint(rundir.checkpoint_path(ref))["model"]
    b = rundir.load_checkpoint(rundir.checkpoint_path(part))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "resume diverged"
    ev = rundir.read_model_eval(part)
    for table in ("lookup", "untrained", "lookup_synthetic") + (("regression",) if params else ()):
        for cat in ("car", "chair"):
            s = ev["scores"][table][cat]
            assert s["n"] == 360 and 0 <= s["median_error"] <= 180 and 0 <= s["acc30"] <= 1
            assert s["flip_median_error"] <= s["median_error"] + 1e-9
    assert ev["images"]["car_nn"].shape == (360, 4) and ev["images"]["car_dictionary"].shape == (1800,)


def test_cli_trains_the_pose_scenario_by_default():
    from acc_core.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--data", "pose-procedural", "--steps", "50"])
    cfg = config_from_args(args)
    assert cfg.train.method == "acc_pose" and cfg.train.steps == 50
    assert cfg.model.encoder == "pose_small"
    validate(cfg)
    paper = config_from_args(build_parser().parse_args(["train", "--data", "pose-procedural",
                                                        "--preset", "paper"]))
    assert paper.train.steps == 40_000 and paper.params.titration == "linear"


def test_ml_vae_on_pose_groups_one_synthetic_training_instance_and_looks_up_poses(tmp_path):
    """Table 1's weakly supervised VAE row: ML-VAE's groups are set A's (one instance seen
    from several viewpoints), synthetic only, never a held-out test instance; its style latent
    looks up the real-domain queries like ACC's embedding."""
    from acc_core.config import validate
    from acc_core.methods.acc_pose_eval import lookup_scores
    from acc_core.train import load_model, train

    cfg = preset("quick", "pose-procedural", method="ml_vae")
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, image_size=16),
                      train=dataclasses.replace(cfg.train, steps=2, snapshot_every=2,
                                                checkpoint_every=2, probe_size=16))
    validate(cfg)
    ds = data_sources.load_for(cfg.data)
    cfg.method.check(cfg, ds)
    batch = cfg.method.batcher(cfg, ds)(np.random.default_rng(0), 1)["indices"]  # (G, S)
    f = ds.factors(batch.ravel()).reshape(*batch.shape, -1)
    assert (f[:, :, [0, 1]] == f[:, :1, [0, 1]]).all()  # one (category, instance) per group
    assert (f[..., 4] == 0).all() and (f[..., 1] < 10).all()  # synthetic, training instances
    assert (np.diff(np.sort(f[..., 2] * 5 + f[..., 3], axis=1), axis=1) > 0).all()  # views differ
    assert train(cfg, tmp_path / "run", device="cpu")["status"] == "done"
    model, cfg = load_model(tmp_path / "run")
    scores = lookup_scores(model, cfg, ds, torch.device("cpu"), representation="style",
                           similarity="l2sq")
    assert set(scores) == {"car", "chair"}
    assert all(s["n"] == 360 and 0 <= s["median_error"] <= 180 for s in scores.values())

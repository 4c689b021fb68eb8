"""The method registry's contract, checked for every registered method alike (STYLE.md: tests
parametrized over the registry): declarations, presets, identity, and one shared training
path that trains, is cancelled, resumes to the same weights and is evaluated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from acc_core import data as data_sources
from acc_core import evaluate, methods, rundir
from acc_core.config import PRESETS, RunConfig, preset, validate
from acc_core.train import train

NAMES = methods.names()
SUPERVISIONS = {"sets", "classes", "pairs", "none"}


def tiny(name: str, steps: int = 4) -> RunConfig:
    """The method's quick preset, shrunk to seconds: 32 px, small batches, few probe images."""
    cfg = preset("quick", "shapes3d-procedural", method=name)
    every = max(1, steps // 2)
    if cfg.data.source == "pose-procedural":  # a method bound to its own source: 16 px renders
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, image_size=16))
    return cfg.replace(train=dataclasses.replace(
        cfg.train, steps=steps, set_size=8, pairs_per_step=1, snapshot_every=every,
        checkpoint_every=every, probe_size=64, seed=1))


def weights(d):
    return rundir.load_checkpoint(rundir.checkpoint_path(d))["model"]


def test_the_registry_lists_the_methods_of_the_issue():
    assert {"acc", "hue_infonce", "lord", "beta_vae", "ml_vae", "ada_gvae"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_declarations(name):
    m = methods.get(name)
    assert m.name == name and m.title and m.paper
    assert m.supervision in SUPERVISIONS
    assert m.representations and len(set(m.representations)) == len(m.representations)
    assert m.check_representation(None) == m.representations[0]
    with pytest.raises(ValueError, match="valid"):
        m.check_representation("no-such-code")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("preset_name", PRESETS)
@pytest.mark.parametrize("source", ["shapes3d-procedural", "digits"])
def test_presets_validate_and_state_their_supervision(name, preset_name, source):
    cfg = preset(preset_name, source, method=name)
    assert cfg.train.method == name
    validate(cfg)
    ds = data_sources.load_for(cfg.data) if source == "digits" else None
    if ds is not None:
        cfg.method.check(cfg, ds)
    text = cfg.method.supervision_text(cfg)
    assert isinstance(text, str) and text.endswith(".") and len(text) < 300
    # the config round-trips through its JSON with the same run id
    assert RunConfig.from_json(cfg.canonical_json()).run_id == cfg.run_id


@pytest.mark.parametrize("name", [n for n in NAMES if methods.get(n).params is not None])
def test_method_params_are_part_of_the_run_identity(name):
    cfg = preset("quick", "shapes3d-procedural", method=name)
    # the first numeric parameter (every method with params has one)
    field = next(f for f in dataclasses.fields(cfg.params)
                 if isinstance(getattr(cfg.params, f.name), (int, float))
                 and not isinstance(getattr(cfg.params, f.name), bool))
    other = getattr(cfg.params, field.name) + 1
    changed = cfg.replace(params=dataclasses.replace(cfg.params, **{field.name: other}))
    assert changed.run_id != cfg.run_id
    with pytest.raises(ValueError, match="unknown"):
        RunConfig.from_dict({**cfg.to_dict(), "params": {"no_such_parameter": 1}})


def test_acc_run_ids_did_not_change_with_the_registry():
    """Shipped runs keep their ids: ACC configs carry no params section, and the former quick
    recipe (`quick-300`, no output gain) still gives the shipped wall-hue run's id."""
    from acc_core.methods.acc import RECIPES

    assert "params" not in preset("quick", "shapes3d-procedural").to_dict()
    cfg = RECIPES["quick-300"]("shapes3d-procedural")
    assert "params" not in cfg.to_dict()
    assert cfg.run_id == "4cbde7e500af"  # pretrained/shapes3d-wall-hue


@pytest.mark.parametrize("name", NAMES)
def test_trains_cancels_resumes_to_the_same_weights_and_evaluates(name, tmp_path, acc_home):
    cfg = tiny(name)
    ref = tmp_path / "ref"
    assert train(cfg, ref, device="cpu")["status"] == "done"

    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2  # cancel after two steps

    part = tmp_path / "part"
    out = train(cfg, part, device="cpu", should_stop=stop)
    assert out == {"status": "cancelled", "step": 2, "reason": "cancelled by user"}
    assert train(cfg, part, device="cpu")["status"] == "done"
    w_ref, w_res = weights(ref), weights(part)
    assert w_ref.keys() == w_res.keys()
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref), "resume diverged"

    steps = rundir.snapshot_steps(part)
    assert steps == rundir.snapshot_steps(ref) and steps[0] == 0 and steps[-1] == cfg.train.steps
    for s in steps:  # every snapshot the same, in every representation
        a, b = rundir.load_snapshot(ref, s), rundir.load_snapshot(part, s)
        for rep in cfg.method.representations:
            ua = rundir.snapshot_codes(a, rep, cfg.method.representations)
            ub = rundir.snapshot_codes(b, rep, cfg.method.representations)
            assert ua.shape[0] == 64 and np.isfinite(ua).all()
            np.testing.assert_array_equal(ua, ub)
    assert rundir.read_metrics(part) is not None
    for rep in cfg.method.representations:
        rep_out = evaluate.report(part, rep=rep)
        assert rep_out["representation"] == rep
        assert set(rep_out["factors"]) == set(data_sources.factor_names(cfg.data.source))
        assert rep_out["sigma"] > 0
        text = evaluate.format_report(rep_out)
        assert rep in text and data_sources.factor_names(cfg.data.source)[0] in text

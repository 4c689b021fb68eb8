"""The quick Shapes3D recipe's named departures from the papers' do what their docstrings say:
the output gain starts the embeddings near the loss's length scale, the lr schedule follows
its formula, bfloat16 training keeps the loss in float32 and falls back to float32 where the
device has no native bf16, and options left at their defaults leave every earlier run id
unchanged."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from acc_core import data as data_sources
from acc_core import losses
from acc_core.config import RunConfig, TrainConfig, lr_factor, preset, training_precision, validate
from acc_core.methods import acc


def _untrained_rms(cfg: RunConfig, n: int = 200) -> float:
    ds = data_sources.load_for(cfg.data)
    x = torch.from_numpy(ds.images(np.linspace(0, len(ds) - 1, n).astype(int)))  # (n, H, W, C)
    x = x.permute(0, 3, 1, 2).float() / 255
    torch.manual_seed(cfg.train.seed)
    with torch.no_grad():
        z = acc.build_encoder_for(cfg, ds)(x)  # (n, E)
    z = z - z.mean(0)
    return float(z.pow(2).sum(1).mean().sqrt())


def test_the_output_gain_starts_the_quick_embeddings_near_the_length_scale():
    new, old = preset("quick"), acc.RECIPES["quick-300"]("shapes3d-procedural")
    scale = losses.loss_length_scale(new.train.similarity, new.train.temperature)  # sqrt(tau) = 1
    plain = new.replace(model=dataclasses.replace(new.model, output_gain=1.0))
    r_old, r_plain, r_new = _untrained_rms(old), _untrained_rms(plain), _untrained_rms(new)
    assert r_old < 0.15 * scale and r_plain < 0.15 * scale  # Glorot: far inside the length scale
    assert 0.5 * scale < r_new < 2 * scale
    # the gain multiplies the output layer only, so the radius scales by exactly the gain
    assert r_new == pytest.approx(acc.QUICK_OUTPUT_GAIN * r_plain, rel=1e-4)


def test_the_quick_recipe_changes_only_named_options():
    new, old = preset("quick"), acc.RECIPES["quick-300"]("shapes3d-procedural")
    assert new.model.output_gain == acc.QUICK_OUTPUT_GAIN and old.model.output_gain == 1.0
    assert new.data == dataclasses.replace(old.data, image_size=acc.QUICK_IMAGE_SIZE)
    assert new.set_a == old.set_a and new.set_b == old.set_b
    differ = {f.name for f in dataclasses.fields(TrainConfig)
              if getattr(new.train, f.name) != getattr(old.train, f.name)}
    assert differ <= {"steps", "lr", "lr_schedule", "warmup_steps", "checkpoint_every",
                      "snapshot_every", "precision"}
    validate(new)


def test_options_at_their_defaults_leave_the_canonical_json_unchanged():
    cfg = acc.RECIPES["quick-300"]("shapes3d-procedural")
    text = cfg.canonical_json()
    for name in ("output_gain", "lr_schedule", "warmup_steps", "precision"):
        assert name not in text
    assert RunConfig.from_json(text) == cfg
    gained = cfg.replace(model=dataclasses.replace(cfg.model, output_gain=2.0))
    assert gained.run_id != cfg.run_id and RunConfig.from_json(gained.canonical_json()) == gained
    bf16 = cfg.replace(train=dataclasses.replace(cfg.train, precision="bfloat16"))
    assert bf16.run_id != cfg.run_id and RunConfig.from_json(bf16.canonical_json()) == bf16


def test_precision_means_bf16_only_where_the_device_has_it(monkeypatch):
    import acc_core.embed as embed

    t = TrainConfig(precision="bfloat16")
    monkeypatch.setattr(embed, "bf16_native", lambda dev: True)
    assert training_precision(t, "cpu") == "bfloat16"
    assert training_precision(TrainConfig(), "cpu") == "float32"  # "default": float32 on a CPU
    assert training_precision(TrainConfig(precision="float32"), "cpu") == "float32"
    monkeypatch.setattr(embed, "bf16_native", lambda dev: False)  # emulated bf16 is slower
    assert training_precision(t, "cpu") == "float32"
    cfg = preset("quick")
    with pytest.raises(ValueError, match="unknown precision 'half'; valid: default, float32"):
        validate(cfg.replace(train=dataclasses.replace(cfg.train, precision="half")))


def test_under_bf16_autocast_the_acc_loss_and_its_gradient_stay_float32():
    g = torch.Generator().manual_seed(0)
    a = (3 * torch.randn(32, 64, generator=g)).requires_grad_()
    b = 3 * torch.randn(32, 64, generator=g)
    exact = losses.acc_loss(a, b)
    (grad,) = torch.autograd.grad(exact, a)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = losses.acc_loss(a, b)
    (grad_under,) = torch.autograd.grad(under, a)
    assert under.dtype == torch.float32
    assert float(under.detach()) == pytest.approx(float(exact.detach()), rel=1e-6)
    assert torch.allclose(grad_under, grad, rtol=1e-5, atol=1e-7)
    # without the guard, autocast would compute the soft nearest neighbour in bf16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        alpha = torch.softmax(losses.similarity_matrix(a, b), dim=1)
        assert (alpha @ b).dtype == torch.bfloat16


def test_a_bf16_run_records_its_precision_and_trains(tmp_path, monkeypatch):
    import json

    import acc_core.embed as embed
    from acc_core.train import train

    monkeypatch.setattr(embed, "bf16_native", lambda dev: True)  # autocast works emulated too
    cfg = acc.RECIPES["quick-300"]("shapes3d-procedural")
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, image_size=32),
                      train=dataclasses.replace(cfg.train, steps=4, snapshot_every=4,
                                                checkpoint_every=4, probe_size=64,
                                                precision="bfloat16"))
    assert train(cfg, tmp_path / "run")["status"] == "done"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["precision"] == "bfloat16" and math.isfinite(metrics["final_loss"])


def test_lr_factor_warms_up_linearly_then_decays_by_cosine():
    t = TrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine")
    assert lr_factor(t, 1) == pytest.approx(0.1) and lr_factor(t, 10) == pytest.approx(1.0)
    assert lr_factor(t, 60) == pytest.approx(0.5)
    assert lr_factor(t, 110) == pytest.approx(0.0, abs=1e-12)
    assert all(lr_factor(TrainConfig(), s) == 1.0 for s in (1, 500, 2000))
    mid = TrainConfig(steps=100, lr_schedule="cosine")
    assert lr_factor(mid, 25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


@pytest.mark.parametrize("bad", [dict(lr_schedule="step"), dict(warmup_steps=300)])
def test_bad_schedules_are_refused(bad):
    cfg = preset("quick")
    with pytest.raises(ValueError, match="lr schedule|warmup"):
        validate(cfg.replace(train=dataclasses.replace(cfg.train, steps=300, **bad)))

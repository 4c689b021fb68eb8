"""The run-time estimate: measured from real steps of the run's method, and measured again
once it is a minute old (the machine's load changes)."""

from __future__ import annotations

import dataclasses

from acc_core import estimate
from acc_core.config import preset
from acc_core import train as train_mod


def test_the_estimate_is_measured_again_when_old(monkeypatch):
    calls = []

    def fake(config, steps=(1, 2, 3), device=None):
        calls.append(config.train.method)
        return [1.0, 0.5 * len(calls), 0.5 * len(calls)]

    monkeypatch.setattr(train_mod, "timed_steps", fake)
    monkeypatch.setattr(estimate, "_CACHE", {})
    cfg = preset("quick", "shapes3d-procedural", method="beta_vae")
    assert estimate.seconds_per_step(cfg, now=100.0) == 0.5
    assert estimate.seconds_per_step(cfg, now=100.0 + estimate.MAX_AGE_S - 1) == 0.5  # cached
    # another seed or step count costs the same per step: no new measurement
    other = cfg.replace(train=dataclasses.replace(cfg.train, seed=3, steps=10))
    assert estimate.seconds_per_step(other, now=101.0) == 0.5
    assert estimate.seconds_per_step(cfg, now=100.0 + estimate.MAX_AGE_S + 1) == 1.0  # re-measured
    assert len(calls) == 2


def test_the_estimate_times_every_method():
    for method in ("acc", "lord", "ada_gvae"):
        cfg = preset("quick", "digits", method=method)
        times = train_mod.timed_steps(cfg, steps=(1, 2))
        assert len(times) == 2 and all(t > 0 for t in times)

"""The training loop: determinism, resume after SIGKILL, NaN handling, cancel, snapshots."""

import dataclasses
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from acc_core import train as train_mod
from acc_core import rundir
from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig


def tiny_config(steps=12, **train_kw) -> RunConfig:
    """Digits (bundled), sets grouped by digit, 9 held out: seconds on a CPU."""
    t = dict(lr=1e-3, steps=steps, set_size=8, checkpoint_every=4, snapshot_every=4,
             probe_size=200, seed=3)
    t.update(train_kw)
    return RunConfig(
        data=DataConfig(source="digits", held_out={"digit": (9,)}),
        set_a=SetSpec(inactive=("digit",)),
        set_b=SetSpec(inactive=("digit",)),
        model=ModelConfig(encoder="mnist", embedding_dim=8),
        train=TrainConfig(**t),
    )


def weights(run_dir):
    ckpt = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    return ckpt["step"], ckpt["model"]


def test_training_is_deterministic_and_writes_its_run_folder(tmp_path):
    cfg = tiny_config()
    r1 = train_mod.train(cfg, tmp_path / "a", device="cpu")
    r2 = train_mod.train(cfg, tmp_path / "b", device="cpu")
    assert r1 == {"status": "done", "step": 12, "reason": None} == r2
    s1, w1 = weights(tmp_path / "a")
    s2, w2 = weights(tmp_path / "b")
    assert s1 == s2 == 12
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    d = tmp_path / "a"
    assert (d / "config.json").exists() and (d / "metrics.json").exists()
    log = (d / "log.jsonl").read_text().splitlines()
    assert len(log) == 12
    snaps = sorted(p.name for p in (d / "snapshots").glob("*.npz"))
    assert snaps == [f"step_{s:07d}.npz" for s in (0, 4, 8, 12)]
    with np.load(d / "snapshots" / snaps[-1]) as z:
        assert z["embeddings"].shape == (200, 8) and z["factors"].shape == (200, 1)
        assert np.isfinite(z["embeddings"]).all()


def test_training_reduces_the_loss(tmp_path):
    cfg = tiny_config(steps=40, lr=1e-3, set_size=16)
    train_mod.train(cfg, tmp_path, device="cpu")
    import json

    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_non_finite_loss_fails_the_run_with_step_and_reason(tmp_path, monkeypatch):
    from acc_core.methods.acc import ACC

    real = ACC.loss
    calls = {"n": 0}

    def poisoned(self, *a, **k):
        calls["n"] += 1
        loss, terms = real(self, *a, **k)
        return (loss * float("nan") if calls["n"] == 3 else loss), terms

    monkeypatch.setattr(ACC, "loss", poisoned)
    out = train_mod.train(tiny_config(), tmp_path, device="cpu")
    assert out["status"] == "failed"
    assert "non-finite loss" in out["reason"] and "step 3" in out["reason"]


def test_should_stop_cancels_with_a_checkpoint(tmp_path):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 5

    out = train_mod.train(tiny_config(), tmp_path, device="cpu", should_stop=stop)
    assert out["status"] == "cancelled" and out["step"] == 5
    assert weights(tmp_path)[0] == 5
    # starting again resumes and finishes
    assert train_mod.train(tiny_config(), tmp_path, device="cpu")["status"] == "done"


RUNNER = """
import sys
from acc_core.config import RunConfig
from acc_core.train import train
cfg = RunConfig.from_json(open(sys.argv[1]).read())
train(cfg, sys.argv[2], device="cpu")
"""


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    cfg = tiny_config(steps=60, checkpoint_every=3, snapshot_every=30)
    reference = tmp_path / "reference"
    train_mod.train(cfg, reference, device="cpu")

    killed = tmp_path / "killed"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(cfg.canonical_json())
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(cfg_file), str(killed)])
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            ck = killed / rundir.CHECKPOINT
            if ck.exists() and rundir.load_checkpoint(ck)["step"] >= 9:
                break
            assert proc.poll() is None, "the training subprocess ended before it was killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    step_at_kill = weights(killed)[0]
    assert 9 <= step_at_kill < 60
    out = train_mod.train(cfg, killed, device="cpu")
    assert out["status"] == "done"
    _, w_ref = weights(reference)
    _, w_res = weights(killed)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)
    # the log has one record per step, no duplicates from the replayed steps
    steps = [int(line.split('"step": ')[1].split(",")[0])
             for line in (killed / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 61))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / rundir.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="delete it"):
        train_mod.train(tiny_config(), tmp_path, device="cpu")


def test_double_augmentation_and_infonce_run(tmp_path):
    cfg = RunConfig(
        data=DataConfig(source="shapes3d-procedural", image_size=32),
        set_a=SetSpec(inactive=("wall_hue",)),
        set_b=SetSpec(inactive=("wall_hue",)),
        model=ModelConfig(encoder="shapes3d", embedding_dim=4),
        train=TrainConfig(steps=2, set_size=6, probe_size=20, augmentations=("hue",),
                          double_augmentation=True, lr=1e-3),
    )
    assert train_mod.train(cfg, tmp_path / "dbl", device="cpu")["status"] == "done"
    base = cfg.replace(train=dataclasses.replace(cfg.train, method="hue_infonce",
                                                 double_augmentation=False,
                                                 similarity="cosine", temperature=0.1))
    assert train_mod.train(base, tmp_path / "nce", device="cpu")["status"] == "done"

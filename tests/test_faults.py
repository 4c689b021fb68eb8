"""Crash consistency: kill the trainer (SIGKILL, through `acc_core.faults`) at every kind of
write a run makes, resume once with the same command, and check that the run ends equal to an
uninterrupted one: weights, optimizer state, every snapshot, metrics, log, and no temp file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from acc_core import rundir

TINY = ["--data", "digits", "--preset", "quick", "--steps", "6", "--set-size", "8",
        "--probe-size", "120", "--snapshot-every", "2", "--checkpoint-every", "2", "--seed", "5"]

# (kind, n, phase): the n-th write of that kind, killed before or after its rename.
FAULTS = [
    ("config", 1, "before"),      # submit: the run folder's config.json
    ("index", 1, "before"),       # the store's first write transaction (the claim)
    ("snapshot", 1, "before"),    # the untrained network's snapshot, not yet in place
    ("log", 3, "after"),          # a log record appended, no checkpoint for it yet
    ("snapshot", 2, "after"),     # the step-2 snapshot in place, its checkpoint not yet
    ("checkpoint", 1, "before"),  # the first checkpoint written but not renamed
    ("checkpoint", 2, "after"),   # the step-4 checkpoint in place, nothing after it
    ("checkpoint", 3, "after"),   # the final checkpoint: the run must not end without the rest
    ("snapshot", 4, "before"),    # the final snapshot
    ("metrics", 1, "before"),     # metrics.json, the last file of a run
]


def acc(home: Path, *args, fault: str | None = None, timeout: int = 300):
    env = dict(os.environ, ACC_HOME=str(home))
    env.pop("ACC_FAULT_AT", None)
    if fault:
        env["ACC_FAULT_AT"] = fault
    return subprocess.run([sys.executable, "-m", "acc_core.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def run_dir(home: Path) -> Path:
    dirs = [p for p in home.iterdir() if p.is_dir() and (p / "config.json").exists()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("reference")
    out = acc(home, "train", *TINY)
    assert out.returncode == 0, out.stderr
    return run_dir(home)


def assert_same_run(d: Path, ref: Path) -> None:
    a = rundir.load_checkpoint(rundir.checkpoint_path(d))
    b = rundir.load_checkpoint(rundir.checkpoint_path(ref))
    assert a["step"] == b["step"] == 6 and a["run_id"] == b["run_id"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sb:
        for name in sb[k]:
            assert torch.equal(torch.as_tensor(sa[k][name]), torch.as_tensor(sb[k][name]))
    assert rundir.snapshot_steps(d) == rundir.snapshot_steps(ref) == [0, 2, 4, 6]
    for s in rundir.snapshot_steps(ref):
        np.testing.assert_array_equal(rundir.load_snapshot(d, s)["embeddings"],
                                      rundir.load_snapshot(ref, s)["embeddings"])
    assert rundir.read_metrics(d)["final_loss"] == rundir.read_metrics(ref)["final_loss"]
    assert [r["step"] for r in rundir.read_log(d)] == list(range(1, 7))
    assert [r["loss"] for r in rundir.read_log(d)] == [r["loss"] for r in rundir.read_log(ref)]
    left = [p for p in d.rglob("*") if p.name.endswith(".tmp")]
    assert not left, f"temp files left behind: {left}"


@pytest.mark.parametrize("kind, n, phase", FAULTS, ids=[f"{k}{n}-{p}" for k, n, p in FAULTS])
def test_a_kill_at_each_write_resumes_to_the_uninterrupted_run(kind, n, phase, tmp_path, reference):
    home = tmp_path / "runs"
    killed = acc(home, "train", *TINY, fault=f"{kind}:{n}:{phase}")
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    resumed = acc(home, "train", *TINY)  # the very next command, nothing in between
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "done at step 6" in resumed.stdout or "already trained" in resumed.stdout
    d = run_dir(home)
    assert_same_run(d, reference)
    listing = json.loads(acc(home, "runs", "--json", "--user-only").stdout)
    assert [(r["status"], r["step"]) for r in listing] == [("done", 6)]


def test_a_kill_while_caching_an_evaluation_leaves_no_trace(tmp_path, reference):
    home = tmp_path / "runs"
    assert acc(home, "train", *TINY).returncode == 0
    d = run_dir(home)
    killed = acc(home, "eval", d.name, "--json", fault="eval:2:before")
    assert killed.returncode == -signal.SIGKILL
    again = acc(home, "eval", d.name, "--json")
    assert again.returncode == 0, again.stderr
    clean = acc(tmp_path / "other", "eval", str(reference), "--json")
    strip = lambda rep: {k: v for k, v in rep.items() if k not in ("run_id",)}  # noqa: E731
    assert strip(json.loads(again.stdout)) == strip(json.loads(clean.stdout))
    assert not [p for p in d.rglob("*.tmp")]


METHOD_TINY = ["--data", "shapes3d-procedural", "--preset", "quick", "--steps", "4",
               "--set-size", "8", "--probe-size", "60", "--snapshot-every", "2",
               "--checkpoint-every", "2", "--seed", "3"]


@pytest.mark.parametrize("method", ["hue_infonce", "lord", "beta_vae", "ml_vae", "ada_gvae",
                                    "mixing", "rci"])
def test_every_method_survives_sigkill_and_resumes_to_the_same_weights(method, tmp_path):
    """ACC is covered case by case above; each other method is killed once, just after its
    first checkpoint, and resumed by the very next command."""
    ref_home, home = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "--method", method, *METHOD_TINY]
    assert acc(ref_home, *args).returncode == 0
    killed = acc(home, *args, fault="checkpoint:1:after")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = acc(home, *args)
    assert resumed.returncode == 0 and "done at step 4" in resumed.stdout, resumed.stderr
    a = rundir.load_checkpoint(rundir.checkpoint_path(run_dir(home)))
    b = rundir.load_checkpoint(rundir.checkpoint_path(run_dir(ref_home)))
    assert a["step"] == b["step"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    for s in rundir.snapshot_steps(run_dir(ref_home)):
        np.testing.assert_array_equal(rundir.load_snapshot(run_dir(home), s)["embeddings"],
                                      rundir.load_snapshot(run_dir(ref_home), s)["embeddings"])


def test_acc_runs_reports_the_checkpoint_step_of_a_killed_run(tmp_path):
    home = tmp_path / "runs"
    killed = acc(home, "train", *TINY, fault="checkpoint:2:after")  # checkpoint at step 4
    assert killed.returncode == -signal.SIGKILL
    listing = json.loads(acc(home, "runs", "--json", "--user-only").stdout)
    assert [(r["status"], r["step"]) for r in listing] == [("interrupted", 4)]
    assert "resumes from its checkpoint at step 4" in listing[0]["reason"]

"""The `acc` command: clear one-line errors, training through the store, cache hits, eval."""

import json
import os
import subprocess
import sys

import pytest


def acc(*args, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "acc_core.cli", *args], capture_output=True,
                          text=True, env=e, timeout=timeout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "0"], "temperature must be a finite number > 0"),
        (["--temperature", "inf"], "temperature must be a finite number > 0"),
        (["--probe-size", "0"], "probe size must be >= 1"),
        (["--seed", "-1"], "seed must be in"),
        (["--inactive-a", "colour"], "unknown inactive factor 'colour'"),
        (["--inactive-a", "floor_hue,wall_hue,object_hue,scale,shape,orientation"], "every factor"),
        (["--data", "imagenet"], "invalid choice: 'imagenet'"),
        (["--method", "vqvae"], "invalid choice: 'vqvae'"),
        (["--embedding-dim", "0"], "embedding dim must be >= 1"),
        (["--checkpoint-every", "0"], "checkpoint every must be >= 1"),
        (["--data", "mnist"], "acc data download mnist"),
    ],
)
def test_impossible_configs_are_one_clear_line(args, message, acc_home):
    out = acc("train", *args, env={"ACC_HOME": str(acc_home)})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert message in out.stderr
    assert out.stderr.count("\n") == 1


TINY = ["--data", "digits", "--preset", "quick", "--steps", "6", "--set-size", "8",
        "--probe-size", "150", "--snapshot-every", "3", "--checkpoint-every", "3"]


def test_train_then_cache_hit_then_runs_and_eval(acc_home):
    env = {"ACC_HOME": str(acc_home)}
    first = acc("train", *TINY, env=env)
    assert first.returncode == 0, first.stderr
    assert "done at step 6" in first.stdout
    second = acc("train", *TINY, env=env)
    assert "cache hit" in second.stdout
    runs = json.loads(acc("runs", "--json", "--user-only", env=env).stdout)
    assert len(runs) == 1 and runs[0]["status"] == "done"
    ev = acc("eval", runs[0]["run_id"][:6], "--json", env=env)
    assert ev.returncode == 0, ev.stderr
    rep = json.loads(ev.stdout)
    assert set(rep["factors"]) == {"digit"}
    assert rep["inactive"] == ["digit"]
    assert 0.0 <= rep["factors"]["digit"]["final_probe"] <= 1.0
    table = acc("eval", runs[0]["run_id"], env=env)
    assert "digit *" in table.stdout


def test_cancel_unknown_run_is_clear(acc_home):
    out = acc("cancel", "zzzz", env={"ACC_HOME": str(acc_home)})
    assert out.returncode == 2 and "Traceback" not in out.stderr

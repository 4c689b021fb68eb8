"""Sweeps: grid expansion, skipping what is done, the local engine, and an embedded Ray whose
trial is killed mid-run, all ending with the same runs as training them one by one."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_shapes_config

from acc_core import rundir, sweep, sweep_ray, sweep_run
from acc_core.store import RunStore

STEPS, EVERY = 100, 25  # long enough (seconds) for a trial to be caught between checkpoints


def tiny_runs(n: int = 4, steps: int = STEPS):
    cfgs = [tiny_shapes_config(seed=s, steps=steps, probe_size=120) for s in range(n)]
    return [c.replace(train=dataclasses.replace(c.train, checkpoint_every=EVERY,
                                                snapshot_every=EVERY)) for c in cfgs]


# ----- grid expansion ------------------------------------------------------------------------------
def test_seeds_parse_ranges_and_lists():
    assert sweep.parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert sweep.parse_seeds("3,1,3,0-1") == (3, 1, 0)
    assert sweep.parse_seeds([2, "5-6"]) == (2, 5, 6)
    with pytest.raises(ValueError, match="seeds are integers"):
        sweep.parse_seeds("a-b")


def test_grid_is_methods_x_scenarios_x_seeds_x_fields_seeds_outermost():
    grid = sweep.grid_from({"methods": ["acc", "lord"], "scenarios": ["shapes3d-wall-hue"],
                            "seeds": "0-1", "set": {"train.steps": [50, 60]}})
    cfgs = sweep.expand(grid)
    assert len(cfgs) == 2 * 1 * 2 * 2
    assert [c.train.seed for c in cfgs] == [0] * 4 + [1] * 4
    assert {(c.train.method, c.train.steps) for c in cfgs} == {
        (m, s) for m in ("acc", "lord") for s in (50, 60)}
    assert all(c.set_a.inactive == ("wall_hue",) for c in cfgs)  # LORD gets the scenario too


def test_a_scenario_with_its_own_method_is_the_shipped_run():
    from acc_core import pretrained

    cfgs = sweep.expand(sweep.grid_from({"scenarios": ["shapes3d-hue-infonce",
                                                       "shapes3d-wall-hue"], "seeds": "0"}))
    shipped = pretrained.scenarios()
    assert [c.run_id for c in cfgs] == [shipped["shapes3d-hue-infonce"][0].run_id,
                                        shipped["shapes3d-wall-hue"][0].run_id]


def test_a_swept_config_is_the_one_acc_train_builds():
    from acc_core.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--seed", "3", "--temperature", "0.5",
                                      "--inactive-a", "wall_hue,floor_hue"])
    want = config_from_args(args)
    got = sweep.expand(sweep.grid_from({"seeds": [3], "set": {
        "train.temperature": "0.5", "set_a.inactive": "wall_hue+floor_hue"}}))
    assert [c.run_id for c in got] == [want.run_id]


def test_options_left_out_of_the_run_id_at_their_default_can_be_swept_too():
    """train.precision and model.output_gain are left out of a config's dict at their defaults
    (so that older run ids stay); a sweep sets them all the same, as acc train would."""
    base = sweep.expand(sweep.grid_from({}))[0]  # the quick preset: bfloat16, output gain 14
    got = sweep.expand(sweep.grid_from({"set": {"train.precision": ["float32", "default"],
                                                "model.output_gain": "2.5"}}))
    assert [(c.train.precision, c.model.output_gain) for c in got] == [("float32", 2.5),
                                                                        ("default", 2.5)]
    want = base.replace(train=dataclasses.replace(base.train, precision="default"),
                        model=dataclasses.replace(base.model, output_gain=2.5))
    assert got[1].run_id == want.run_id
    same = sweep.expand(sweep.grid_from({"set": {"train.precision": base.train.precision}}))
    assert [c.run_id for c in same] == [base.run_id]
    assert "train.precision" in sweep.valid_fields(base)


def test_duplicates_collapse_to_one_run():
    grid = sweep.grid_from({"methods": ["acc"], "seeds": "0,0,0-1",
                            "set": {"train.temperature": ["1", "1.0", 1]}})
    assert len(sweep.expand(grid)) == 2
    # the scenario's own method named explicitly is the same run as the default
    a = sweep.expand(sweep.grid_from({"scenarios": ["shapes3d-wall-hue"]}))
    b = sweep.expand(sweep.grid_from({"scenarios": ["shapes3d-wall-hue"], "methods": ["acc"]}))
    assert [c.run_id for c in a] == [c.run_id for c in b]


@pytest.mark.parametrize("spec, message", [
    ({"set": {"train.stpes": 3}}, r"unknown config field 'train.stpes'; valid: .*train\.steps"),
    ({"set": {"train.steps": "many"}}, r"train.steps takes an integer"),
    ({"set": {"train.seed": 3}}, r"use --seeds"),
    ({"set": {"params.beta": 3}}, r"params.beta' for method acc"),
    ({"methods": ["nope"]}, r"nope.*lord"),
    ({"scenarios": ["nope"]}, r"unknown scenario 'nope'; valid: .*shapes3d-wall-hue"),
    ({"scenarios": ["shapes3d-wall-hue"], "data": "digits"}, r"not both"),
    ({"set": {"train.steps": 0}}, r"steps must be >= 1"),
])
def test_bad_grids_fail_with_one_clear_line(spec, message):
    with pytest.raises(ValueError, match=message):
        sweep.expand(sweep.grid_from(spec))


def test_spec_files_json_and_toml_and_flags_agree(tmp_path):
    from acc_core.cli import build_parser
    from acc_core.sweep_cli import spec_from_args

    (tmp_path / "s.json").write_text(json.dumps(
        {"methods": ["acc"], "seeds": "0-2", "set": {"train.temperature": [0.5, 2]}}))
    (tmp_path / "s.toml").write_text('methods = ["acc"]\nseeds = "0-2"\n'
                                     '[set]\n"train.temperature" = [0.5, 2]\n')
    flags = build_parser().parse_args(["sweep", "--method", "acc", "--seeds", "0-2",
                                       "--set", "train.temperature=0.5,2"])
    ids = [[c.run_id for c in sweep.expand(sweep.grid_from(s))] for s in (
        sweep.load_spec(tmp_path / "s.json"), sweep.load_spec(tmp_path / "s.toml"),
        spec_from_args(flags))]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 6
    (tmp_path / "bad.json").write_text('{"seed": 1}')
    with pytest.raises(ValueError, match="unknown key 'seed'.*valid: name, methods"):
        sweep.load_spec(tmp_path / "bad.json")


# ----- engines ----------------------------------------------------------------------------------------
def test_without_ray_the_ray_engine_says_what_to_install(monkeypatch, capsys):
    from acc_core.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setattr(sweep_ray, "available", lambda: False)
    with pytest.raises(ValueError, match=r"pip install 'acc-explorer\[cluster\]'"):
        sweep_run.pick_engine("ray")
    assert sweep_run.pick_engine("auto") == "local"
    assert main(["sweep", "--engine", "ray", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["acc: error: " + sweep_ray.MISSING]


def test_local_sweep_skips_done_runs_and_records_membership(acc_home, capsys):
    from acc_core.cli import main

    args = ["sweep", "--engine", "local", "--seeds", "0-1", "--name", "tiny", "--set",
            "train.steps=4", "--set", "train.set_size=8", "--set", "model.embedding_dim=8",
            "--set", "train.probe_size=60", "--set", "train.checkpoint_every=2"]
    assert main(args) == 0
    assert "2 trained, 0 already done" in capsys.readouterr().out
    store = RunStore(acc_home)
    runs = {r.run_id: r for r in store.list_runs(include_pretrained=False)}
    assert len(runs) == 2 and all(r.status == "done" for r in runs.values())
    stamps = {rid: (r.dir / "checkpoint.pt").stat().st_mtime_ns for rid, r in runs.items()}
    assert main(args) == 0  # the rerun trains nothing
    assert "0 trained, 2 already done" in capsys.readouterr().out
    assert stamps == {rid: (r.dir / "checkpoint.pt").stat().st_mtime_ns
                      for rid, r in runs.items()}
    [rec] = sweep.list_sweeps(acc_home)
    assert rec["name"] == "tiny" and sorted(rec["runs"]) == sorted(runs)
    assert sweep.counts(store, rec["runs"])["done"] == 2


def assert_same_run(d: Path, ref: Path) -> None:
    a = rundir.load_checkpoint(rundir.checkpoint_path(d))
    b = rundir.load_checkpoint(rundir.checkpoint_path(ref))
    assert a["step"] == b["step"] == STEPS and a["run_id"] == b["run_id"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    for k, state in b["optimizer"]["state"].items():
        for name, v in state.items():
            assert torch.equal(torch.as_tensor(a["optimizer"]["state"][k][name]), torch.as_tensor(v))
    assert rundir.snapshot_steps(d) == rundir.snapshot_steps(ref) == list(range(0, STEPS + 1, EVERY))
    for s in rundir.snapshot_steps(ref):
        np.testing.assert_array_equal(rundir.load_snapshot(d, s)["embeddings"],
                                      rundir.load_snapshot(ref, s)["embeddings"])
    assert [r["loss"] for r in rundir.read_log(d)] == [r["loss"] for r in rundir.read_log(ref)]
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in ref.iterdir())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Module-wide fixtures (and the Ray workers they start) use the tests' data folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACC_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
        yield


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir) -> dict[str, Path]:
    """The sweep's runs trained one by one, on one torch thread as a trial trains."""
    from acc_core.analysis.arrays import single_thread
    from acc_core.train import train

    root = tmp_path_factory.mktemp("one-by-one")
    with single_thread():
        for cfg in tiny_runs():
            train(cfg, root / cfg.run_id)
    return {c.run_id: root / c.run_id for c in tiny_runs()}


def test_local_engine_gives_the_runs_trained_one_by_one(tmp_path, reference):
    store = RunStore(tmp_path / "runs")
    out = sweep_run.run_sweep(tiny_runs(), store=store, engine="local")
    assert out["done"] == 4 and not out["failed"]
    for rid, ref in reference.items():
        assert store.get(rid).status == "done"
        assert_same_run(store.root / rid, ref)


@pytest.fixture(scope="module")
def embedded_ray(data_dir):
    """One embedded Ray (2 CPUs, loopback only) for this module's Ray tests."""
    pytest.importorskip("ray")
    before = set(Path("/tmp").glob("acc-ray-*"))
    with sweep_ray.connect(cpus=2) as ray:
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield ray
    assert not ray.is_initialized()
    assert set(Path("/tmp").glob("acc-ray-*")) == before  # its session folder is gone


@pytest.mark.ray
def test_ray_sweep_survives_a_killed_trial_and_equals_one_by_one(tmp_path, reference,
                                                                  embedded_ray):
    store = RunStore(tmp_path / "runs")
    killed: dict = {}

    def kill_one(p: sweep_run.Progress) -> None:
        """SIGKILL the first trial found past its first checkpoint (a step after it logged: the
        checkpoint is written after its step's log record) and well before its end (the step
        read from the log, written every step; the heartbeat lags by a second)."""
        if killed:
            return
        for r in store.list_runs(status="running", include_pretrained=False):
            log = rundir.read_log(r.dir)
            if log and EVERY < log[-1]["step"] <= STEPS - 30 and r.worker_pid != os.getpid():
                os.kill(r.worker_pid, signal.SIGKILL)
                killed.update(run_id=r.run_id, at=time.time())
                return

    out = sweep_run.run_sweep(tiny_runs(), store=store, engine="ray", cpus=2,
                              on_progress=kill_one)
    assert killed, "no trial was caught mid-run (the runs finished too fast to kill one)"
    assert out["done"] == 4 and not out["failed"], out
    for rid, ref in reference.items():
        rec = store.get(rid)
        assert rec.status == "done" and rec.step == STEPS
        assert_same_run(store.root / rid, ref)
    victim = store.get(killed["run_id"])
    assert victim.crashes == 1  # reaped once, then resumed by Ray's retry
    log = rundir.read_log(victim.dir)
    resumed_at = max(r["step"] for r in log if r["time"] < killed["at"])
    assert EVERY <= resumed_at < STEPS and resumed_at % EVERY == 0  # from its checkpoint
    assert all(r["time"] > killed["at"] for r in log if r["step"] > resumed_at)


@pytest.mark.ray
def test_ray_trials_without_a_shared_store_return_their_run_folders(tmp_path, reference,
                                                                     embedded_ray):
    store = RunStore(tmp_path / "runs")
    cfgs = tiny_runs()[:2]
    out = sweep_run.run_sweep(cfgs, store=store, engine="ray", shared_store=False)
    assert out["done"] == 2 and not out["failed"], out
    for cfg in cfgs:
        rec = store.get(cfg.run_id)
        assert rec.status == "done" and rec.worker_id == f"sweep-{os.getpid()}"
        assert_same_run(rec.dir, reference[cfg.run_id])
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]
    assert not any((Path("/tmp") / "acc-sweep" / c.run_id).exists() for c in cfgs)


def test_the_report_uses_every_seed_there_is(acc_home):
    """docs/make_reproduction.py: Figure 3c takes however many seeds exist, shipped and (with
    --seeds-from-store) a sweep's in the run store, one per seed."""
    from acc_core import pretrained

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
    import make_reproduction as mr

    shipped = mr.seed_runs("shapes3d-wall-hue")
    assert len(shipped) >= pretrained.SEEDS
    store = RunStore(acc_home)
    cfg = pretrained.scenarios()["shapes3d-wall-hue"][0]
    for seed in (1, 7, 8):  # seed 1 is shipped already: counted once
        rec = store.submit(cfg.replace(train=dataclasses.replace(cfg.train, seed=seed)))
        store.claim(rec.run_id, "test", os.getpid())
        store.finish(rec.run_id, "done", step=cfg.train.steps)
    runs = mr.seed_runs("shapes3d-wall-hue", store)
    assert len(runs) == len(shipped) + 2
    assert {store.root / r.run_id for r in store.list_runs(include_pretrained=False)
            if r.config.train.seed in (7, 8)} <= set(runs)

"""Shipped runs: the scenario table, export, listing, reproduce, and read-only caching."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_shapes_config

from acc_core import evaluate, pretrained
from acc_core.config import preset


def test_scenarios_cover_the_papers_settings():
    s = pretrained.scenarios()
    hues = {"floor_hue", "wall_hue", "object_hue"}
    assert set(s["shapes3d-no-inactive"][0].set_a.inactive) == set()
    assert set(s["shapes3d-all-hues"][0].set_a.inactive) == hues
    b_free = s["shapes3d-wall-hue-b-free"][0]
    assert b_free.set_a.inactive == ("wall_hue",) and b_free.set_b.inactive == ()
    assert s["shapes3d-hue-infonce"][0].train.method == "hue_infonce"
    assert s["shapes3d-wall-hue-2d"][0].model.embedding_dim == 2
    digits = s["digits-style"][0]
    assert digits.data.held_out == {"digit": (9,)} and digits.model.embedding_dim == 8
    extra = pretrained.extra_scenarios()
    # five seeds for each of the six Shapes3D scenarios of Figure 3c
    for name in list(s)[:6]:
        seeds = {s[name][0].train.seed} | {extra[f"{name}-seed{k}"][0].train.seed for k in range(1, 5)}
        assert seeds == {0, 1, 2, 3, 4}
        assert extra[f"{name}-seed1"][0].replace(train=s[name][0].train) == s[name][0]
    taus = {extra[n][0].train.temperature for n in extra if "-tau" in n} | {1.0}
    assert len(taus) >= 3
    # Figure 3c's ACC runs, their seeds, the temperatures, the 2-D and appendix C runs: `quick`
    quick = preset("quick", "shapes3d-procedural")
    acc_runs = {n: c for n, (c, _) in {**s, **extra}.items()
                if c.train.method == "acc" and c.data.source == "shapes3d-procedural"
                and not n.endswith("-paper")}
    assert len(acc_runs) == 5 * 5 + 2 + 2
    for name, cfg in acc_runs.items():
        assert (cfg.data, cfg.model.output_gain, cfg.train.steps, cfg.train.lr, cfg.train.precision) == (
            quick.data, quick.model.output_gain, quick.train.steps, quick.train.lr,
            quick.train.precision), name
    paper = extra["shapes3d-all-hues-paper"][0]
    assert paper.train.steps == 2000 and paper.train.lr == 3e-5 and paper.data.image_size is None
    ids = [c.run_id for c, _ in pretrained.all_scenarios().values()]
    assert len(ids) == len(set(ids))  # every scenario is a distinct run


@pytest.fixture
def shipped(acc_home, tmp_path, monkeypatch):
    """A tiny run trained in the store, exported light into a private pretrained folder."""
    from acc_core.store import RunStore
    from acc_core.train import train

    dest = tmp_path / "shipped"
    dest.mkdir()
    monkeypatch.setenv("ACC_PRETRAINED_DIR", str(dest))
    cfg = tiny_shapes_config(steps=6, probe_size=200)
    store = RunStore()
    rec = store.submit(cfg)
    assert store.claim(rec.run_id, "test", os.getpid())
    res = train(cfg, rec.dir, device="cpu")
    store.finish(rec.run_id, res["status"], step=res["step"], reason=res["reason"])
    out = pretrained.export(rec.dir, "tiny", "a tiny run", dest=dest, weights=True)
    return cfg, out


def test_export_ships_a_compact_self_contained_run(shipped, acc_home):
    cfg, out = shipped
    assert {p.name for p in out.iterdir()} >= {"config.json", "log.jsonl", "meta.json",
                                               "snapshots", "eval", "checkpoint.pt"}
    with np.load(next((out / "snapshots").glob("*.npz"))) as z:
        assert z["embeddings"].dtype == np.float16
    rep = json.loads((out / "eval" / "report.json").read_text())
    assert rep["run_id"] == cfg.run_id and set(rep["factors"]) == set(evaluate.dataset(out).factor_names)
    listed = pretrained.list_pretrained()
    assert [p["name"] for p in listed] == ["tiny"] and listed[0]["run_id"] == cfg.run_id
    # with the user's own copy gone, the app and CLI still see it as a finished run
    from acc_core.store import RunStore

    assert RunStore(acc_home.parent / "elsewhere").get(cfg.run_id).status == "done"


def test_new_analyses_of_a_shipped_run_are_cached_outside_it(shipped, acc_home):
    _, out = shipped
    before = {p.name: p.read_bytes() for p in (out / "eval").iterdir()}
    v = evaluate.mi_at(out, 0.123)  # a noise scale the shipped cache does not hold
    assert v.shape == (6,) and np.all(np.isfinite(v))
    cached = list((acc_home / "pretrained-cache").rglob("mi_*.json"))
    assert len(cached) == 1
    np.testing.assert_allclose(evaluate.mi_at(out, 0.123), v)
    rep = evaluate.report(out, sigma=0.123)  # `acc eval NAME --sigma 0.123`
    assert rep["sigma"] == 0.123
    assert {p.name: p.read_bytes() for p in (out / "eval").iterdir()} == before
    assert (acc_home / "pretrained-cache" / rep["run_id"] / "eval" / "report.json").exists()


def test_reproduce_retrains_and_compares(shipped):
    _, out = shipped
    res = pretrained.reproduce("tiny", device="cpu")
    assert res["train_seconds"] > 0
    for row in res["factors"].values():
        # the CPU is deterministic: the same config gives the same evaluation
        assert row["new_mi"] == pytest.approx(row["shipped_mi"], abs=0.02)
    assert res["reproduced"] is True
    text = pretrained.format_reproduction(res)
    assert text.splitlines()[-1].startswith("REPRODUCED")


def test_cli_lists_and_rejects_unknown_names(shipped):
    r = subprocess.run([sys.executable, "-m", "acc_core.cli", "pretrained", "list"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "tiny" in r.stdout
    r = subprocess.run([sys.executable, "-m", "acc_core.cli", "pretrained", "reproduce", "nope"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "unknown pretrained run 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_build_with_missing_data_queues_nothing(acc_home, tmp_path, monkeypatch):
    monkeypatch.setenv("ACC_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(Exception, match="acc data download mnist"):
        pretrained.build(["mnist-style"], dest=tmp_path / "dest")
    from acc_core.store import RunStore

    assert RunStore().list_runs(include_pretrained=False) == []


def test_build_rejects_unknown_scenarios(acc_home):
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        pretrained.build(["nope"])


def test_refresh_evaluation_recomputes_in_place(shipped):
    _, out = shipped
    report = out / "eval" / "report.json"
    report.write_text("{}")  # a stale cache
    pretrained.refresh_evaluation("tiny")
    assert (out / "meta.json").exists() and not (out / ".meta.json.refreshing").exists()
    assert json.loads(report.read_text())["factors"]


def test_build_trains_exports_then_skips(acc_home, tmp_path, monkeypatch):
    """`build` trains a scenario (heartbeating, so it is never taken for dead), exports it
    light or whole, and leaves an already shipped, unchanged scenario alone."""
    main = {"tiny-main": (tiny_shapes_config(steps=4, probe_size=100), "main")}
    extra = {"tiny-main-seed1": (tiny_shapes_config(seed=1, steps=4, probe_size=100), "seed 1")}
    monkeypatch.setattr(pretrained, "scenarios", lambda: main)
    monkeypatch.setattr(pretrained, "extra_scenarios", lambda: extra)
    monkeypatch.setattr(pretrained, "all_scenarios", lambda: {**main, **extra})
    monkeypatch.setattr(pretrained, "method_scenarios", lambda: {})
    dest = tmp_path / "dest"
    dest.mkdir()
    out = pretrained.build(dest=dest)
    assert [p.name for p in out] == ["tiny-main", "tiny-main-seed1"]
    assert (dest / "tiny-main" / "checkpoint.pt").exists()
    assert not (dest / "tiny-main-seed1" / "checkpoint.pt").exists()
    assert len(list((dest / "tiny-main-seed1" / "snapshots").glob("*.npz"))) == 2
    from acc_core.store import RunStore

    runs = RunStore(pretrained_dir=tmp_path / "none").list_runs(include_pretrained=False)
    assert {r.status for r in runs} == {"done"} and all(r.step == 4 for r in runs)
    assert pretrained.build(["tiny-main"], dest=dest) == []  # shipped and unchanged: skipped

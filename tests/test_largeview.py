"""The whole-dataset view's job (acc_core.largeview, largejob): requested for a tiny trained
run, served by the worker with progress, cached and read back; refused for shipped runs
without weights; the fast embedding path agrees with the training snapshots."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from acc_core import embed, export, largejob, largeview, rundir
from acc_core.store import RunStore
from acc_core.worker import run_worker

from conftest import tiny_shapes_config

SAMPLE = 700


@pytest.fixture()
def trained(acc_home):
    """A tiny run trained by the worker (the real training loop, seconds)."""
    store = RunStore()
    rec = store.submit(tiny_shapes_config(steps=4, probe_size=200))
    assert run_worker(store.root, once=True, poll=0.05, precompute=False) == 0
    return store, store.get(rec.run_id)


def test_the_worker_embeds_a_large_sample_with_progress(trained, monkeypatch):
    store, rec = trained
    assert rec.status == "done" and largeview.cannot_embed(rec) is None
    seen = []
    write = largeview.write_progress
    monkeypatch.setattr(largeview, "write_progress",
                        lambda run, **kw: (seen.append(kw), write(run, **kw))[1])
    monkeypatch.setattr(largejob, "FIT_SIZE", 300)  # UMAP on 300, 400 placed by memberships
    req = largeview.request(rec, SAMPLE, "float32", start_worker=False)
    assert req.exists() and largeview.pending(store.root)
    assert largeview.progress(rec)["state"] == "queued"
    assert run_worker(store.root, once=True, poll=0.05, precompute=False) == 0
    assert not largeview.pending(store.root) and not list(req.parent.glob("*.running"))

    states = [s["state"] for s in seen]
    assert states[0] == "queued" and states[-1] == "done" and "running" in states
    embedding = [s for s in seen if s.get("phase") == "embedding"]
    assert embedding and embedding[-1]["done"] == embedding[-1]["total"] == SAMPLE
    assert largeview.progress(rec)["state"] == "done" and largeview.ready(rec)

    m = largeview.manifest(rec)
    assert (m["n"], m["step"], m["precision"], m["fit_size"]) == (SAMPLE, 4, "float32", 300)
    assert m["deviation_from_probe_snapshot"]["embedding"] < 1e-4  # the same network, float32
    e = largeview.embeddings(rec)
    assert e["u"].shape == (SAMPLE, 8) and e["xy"].shape == (SAMPLE, 2)
    assert np.isfinite(e["xy"]).all() and len(np.unique(e["indices"])) == SAMPLE
    assert e["nn"].shape == (SAMPLE, largejob.NEIGHBOURS)
    assert not (e["nn"] == np.arange(SAMPLE)[:, None]).any()  # no point is its own neighbour
    d = np.linalg.norm(e["u"][:, None] - e["u"][e["nn"]], axis=2)
    np.testing.assert_allclose(d, e["nnd"], rtol=1e-3, atol=1e-4)
    ds = export.runview.dataset(rec)
    assert (e["factors"] == ds.factors(e["indices"])).all()
    # the cache sits with the run and exports like the probe
    assert largeview.cache_dir(rec) == rundir.eval_dir(rec.dir) / "large"
    df = export.table(rec, sample="large")
    assert len(df) == SAMPLE and (df["image_index"].to_numpy() == e["indices"]).all()


def test_a_stopped_job_goes_back_to_the_queue(trained):
    store, rec = trained
    req = largeview.request(rec, 300, "float32", start_worker=False)
    assert largeview.serve_next(store.root, should_stop=lambda: True)
    assert req.exists() and largeview.progress(rec)["state"] == "interrupted"
    # a claim left by a dead worker is put back too
    running = req.with_suffix(".running")
    os.replace(req, running)
    running.write_text(json.dumps({"run_id": rec.run_id, "dir": str(rec.dir), "sample_size": 300,
                                   "owner": {"pid": 999999999, "host": socket.gethostname()}}))
    largeview._requeue_orphans(req.parent)
    assert req.exists() and not running.exists()


def test_shipped_runs_without_weights_cannot_be_embedded(acc_home):
    reason = largeview.cannot_embed("shapes3d-wall-hue-lord")
    assert "ships without weights (no checkpoint.pt)" in reason
    assert re.search(r"\(.*shapes3d-all-hues.*shapes3d-wall-hue\)", reason)  # runs to pick instead
    assert "digits-style" not in reason  # another dataset
    with pytest.raises(ValueError, match="ships without weights"):
        largeview.request("shapes3d-wall-hue-lord", 1000, start_worker=False)
    assert largeview.cannot_embed("shapes3d-wall-hue") is None
    # a shipped run's large sample is cached in the user's store, never under pretrained/
    assert largeview.cache_dir("shapes3d-wall-hue").is_relative_to(acc_home)


def test_the_fast_path_agrees_with_the_training_snapshot(trained):
    _, rec = trained
    from acc_core.train import load_model

    snap = rundir.load_snapshot(rec.dir, 4)
    model, cfg = load_model(rec.dir)
    model = embed.prepare(model, "cpu")
    ds = export.runview.dataset(rec)
    codes = embed.embed(model, cfg, ds, snap["indices"], "cpu", chunk=64, batch=32)
    np.testing.assert_allclose(codes["embedding"], snap["embeddings"], rtol=1e-4, atol=1e-5)
    if embed.bf16_native("cpu"):
        fast = embed.embed(model, cfg, ds, snap["indices"], "cpu", precision="bfloat16")
        rel = np.linalg.norm(fast["embedding"] - snap["embeddings"], axis=1).max()
        assert rel / np.linalg.norm(snap["embeddings"], axis=1).mean() < 0.05


def test_memberships_follow_umaps_fuzzy_set():
    d = np.array([[0.5, 1.0, 2.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    w = largejob.memberships(d)
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert (np.diff(w[0]) < 0).all()  # nearer landmarks weigh more
    np.testing.assert_allclose(w[1], 0.25)  # equidistant: equal weights


def test_the_embeddings_page_requests_and_shows_the_whole_dataset(trained, monkeypatch):
    """Headless (AppTest): the view asks for the job, then shows the sample once computed;
    a shipped run without weights says why it cannot."""
    from streamlit.testing.v1 import AppTest

    from acc_core import worker

    store, rec = trained
    started = []
    monkeypatch.setattr(worker, "ensure_worker", lambda *a, **k: started.append(a) or False)
    monkeypatch.setattr(largejob, "FIT_SIZE", 300)
    home = str(Path(__file__).resolve().parents[1] / "app" / "Home.py")
    at = AppTest.from_file(home, default_timeout=120).run()
    at.switch_page("views/embeddings.py")
    at.session_state["selected_run"] = rec.run_id
    at.session_state["e_view"] = "Whole dataset"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key=f"w_size_{rec.run_id}").set_value(1000)
    at.button(key=f"w_go_{rec.run_id}").click().run()
    assert (largeview.requests_dir(store.root) / f"{rec.run_id}.json").exists() and started
    assert run_worker(store.root, once=True, poll=0.05, precompute=False) == 0
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(c.value for c in at.caption)
    assert "1,000 of the dataset's 480,000 images" in text and "departure" in text

    light = store.get("shapes3d-wall-hue-lord")
    at.selectbox(key="e_run").set_value(light.run_id).run()
    assert any("ships without weights" in i.value for i in at.info)

"""The Streamlit app, headless (streamlit.testing.v1.AppTest), in private run stores.

Every page renders without an exception or an error message, with and without finished
runs; the Train page explains impossible choices and disables Launch; a tiny run launched
from the Train page is trained by the background worker process and reaches `done`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import tiny_shapes_config
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
HOME = str(REPO / "app" / "Home.py")
PAGES = ["views/train.py", "views/embeddings.py", "views/information.py",
         "views/retrieval.py", "views/compare.py", "views/random_loss.py",
         "views/leaderboard.py"]
TIMEOUT = 120


def tiny_config(seed: int = 0):
    """A run that trains in seconds on a CPU: procedural Shapes3D at 32 px, 10 steps."""
    return tiny_shapes_config(seed=seed, steps=10)


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """A run store with two finished seeds of the tiny config, trained in this process."""
    from acc_core.store import RunStore
    from acc_core.worker import run_worker

    home = tmp_path_factory.mktemp("trained") / "runs"
    store = RunStore(home)
    ids = [store.submit(tiny_config(seed)).run_id for seed in (0, 1)]
    run_worker(home, device="cpu", once=True, poll=0.1)
    assert [store.get(i).status for i in ids] == ["done", "done"]
    return home, ids


def start(home, page: str | None = None, monkeypatch=None) -> AppTest:
    """Run Home.py (and switch to `page`) with the run store at `home`."""
    if monkeypatch is not None:
        monkeypatch.setenv("ACC_HOME", str(home))
    assert os.environ["ACC_HOME"] == str(home)
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def stop_workers(home) -> None:
    """End the worker processes this test started: the app's children (the worker module
    keeps their Popen handles), and any worker holding a lock under `home`, by pid."""
    from acc_core import worker

    root = str(Path(home).resolve())
    for (proc_root, _), proc in list(getattr(worker, "_SPAWNED", {}).items()):
        if proc_root == root and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()
    for w in worker.workers(home):
        if w.get("pid"):
            try:
                os.kill(int(w["pid"]), signal.SIGTERM)
            except ProcessLookupError:
                pass


@pytest.fixture(autouse=True)
def _no_shipped_runs(tmp_path_factory, monkeypatch):
    """The app tests see only the runs they make, not the shipped pretrained ones."""
    monkeypatch.setenv("ACC_PRETRAINED_DIR", str(tmp_path_factory.mktemp("no-pretrained")))


# ----- empty store --------------------------------------------------------------------------
def test_home_renders_with_no_runs(acc_home, tmp_path, monkeypatch):
    monkeypatch.setenv("ACC_PRETRAINED_DIR", str(tmp_path / "no-pretrained"))
    at = start(acc_home)
    assert_clean(at)
    assert at.title[0].value.endswith("ACC explorer")
    assert len(at.get("image")) >= 2  # the set A / set B illustration
    assert any("No runs yet" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES[1:])
def test_pages_without_runs_say_what_to_do(acc_home, page, tmp_path, monkeypatch):
    monkeypatch.setenv("ACC_PRETRAINED_DIR", str(tmp_path / "no-pretrained"))
    at = start(acc_home, page)
    assert_clean(at)
    if page != "views/random_loss.py":
        assert any("Train" in i.value for i in at.info)


def test_random_loss_page_runs_a_small_simulation(acc_home):
    at = start(acc_home, "views/random_loss.py")
    assert_clean(at)
    assert not at.get("plotly_chart")  # nothing is computed before the button
    at.multiselect(key="l_dims").set_value([1, 3])
    at.multiselect(key="l_sizes").set_value([2, 16])
    at.select_slider(key="l_trials").set_value(50)
    at.button(key="l_run").click().run()
    assert_clean(at)
    spec = at.get("plotly_chart")[0].proto.spec
    assert "3 dimensions" in spec and "1 dimension" in spec


def test_train_form_follows_presets_and_blocks_impossible_sets(acc_home):
    at = start(acc_home, "views/train.py")
    assert_clean(at)
    names = ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert [at.segmented_control(key=f"t_a_{n}").value for n in names] == [
        "active", "inactive", "active", "active", "active", "active"]
    from acc_core.config import preset

    assert at.number_input(key="t_steps").value == preset("quick").train.steps
    at.segmented_control(key="t_preset").set_value("paper").run()
    assert at.number_input(key="t_steps").value == 2000
    assert any("Estimated run time" in i.value for i in at.info)
    assert not at.button(key="t_launch").disabled

    for n in names:  # every factor inactive: nothing would vary within a set
        at.segmented_control(key=f"t_a_{n}").set_value("inactive")
    at.run()
    assert at.button(key="t_launch").disabled
    assert any("nothing would vary" in e.value for e in at.error)

    for n in names[:5]:  # only orientation varies: 15 images < a set of 32
        at.segmented_control(key=f"t_a_{n}").set_value("inactive")
    at.segmented_control(key="t_a_orientation").set_value("active")
    at.run()
    assert at.button(key="t_launch").disabled
    assert any("set size 32 > 15" in e.value for e in at.error)

    at.text_input(key="t_seeds").set_value("zero").run()
    assert any("seeds must be integers" in e.value for e in at.error)

    at.segmented_control(key="t_a_orientation").set_value("inactive")  # back to a valid form
    for n in names:
        at.segmented_control(key=f"t_a_{n}").set_value("inactive" if n == "wall_hue" else "active")
    at.text_input(key="t_seeds").set_value("0-2").run()  # several seeds: several runs
    assert not at.error and at.button(key="t_launch").disabled is False
    assert any("3 runs one after another" in i.value for i in at.info)


def test_digits_preset_holds_out_a_class(acc_home):
    at = start(acc_home, "views/train.py")
    at.selectbox(key="t_source").set_value("digits").run()
    assert_clean(at)
    assert at.segmented_control(key="t_a_digit").value == "inactive"  # sets of one digit
    assert any("Held out by the preset: digit 9" in c.value for c in at.caption)


def test_missing_dataset_says_how_to_get_it(acc_home):
    at = start(acc_home, "views/train.py")
    at.selectbox(key="t_source").set_value("shapes3d").run()
    assert not at.exception
    assert any("3dshapes.h5" in e.value for e in at.error)
    assert not any(b.key == "t_launch" for b in at.button)


def test_launch_from_train_page_reaches_done(acc_home):
    from acc_core.store import RunStore

    at = start(acc_home, "views/train.py")
    for key, value in [("t_steps", 10), ("t_set_size", 8), ("t_dim", 8),
                       ("t_snapshot_every", 5), ("t_probe_size", 200)]:
        at.number_input(key=key).set_value(value)
    at.run()
    assert_clean(at)
    at.button(key="t_launch").click().run()
    assert_clean(at)
    assert any("Queued 1 run" in s.value for s in at.success)
    store = RunStore(acc_home)
    try:
        runs = store.list_runs(include_pretrained=False)
        assert len(runs) == 1 and runs[0].config.train.steps == 10
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            rec = store.get(runs[0].run_id)
            if rec.status not in ("queued", "running"):
                break
            time.sleep(0.5)
        assert rec.status == "done", (rec.status, rec.reason)
        assert rec.step == 10
    finally:
        stop_workers(acc_home)
    at.run()  # the watcher now shows the finished run
    assert_clean(at)
    assert any("Done" in s.value for s in at.success)
    assert len(at.get("plotly_chart")) >= 2  # loss curve and PCA of the last snapshot


# ----- with finished runs -----------------------------------------------------------------------
def test_home_lists_runs(trained_home, monkeypatch):
    home, ids = trained_home
    at = start(home, monkeypatch=monkeypatch)
    assert_clean(at)
    df = at.dataframe[0].value
    assert set(df["id"]) >= {i[:8] for i in ids}


def test_embeddings_page(trained_home, monkeypatch):
    home, ids = trained_home
    at = start(home, "views/embeddings.py", monkeypatch)
    assert_clean(at)
    assert at.selectbox(key="e_run").value in ids
    assert len(at.get("plotly_chart")) == 2  # small multiples + the selectable scatter
    assert at.select_slider(key=f"e_step_{at.selectbox(key='e_run').value}").value == 10
    at.selectbox(key="e_colour").set_value("shape").run()
    assert_clean(at)
    assert at.get("plotly_chart")[1].proto.spec  # redrawn, coloured by shape
    assert "coloured by shape" in at.get("plotly_chart")[1].proto.spec


def test_information_page(trained_home, monkeypatch):
    home, ids = trained_home
    at = start(home, "views/information.py", monkeypatch)
    assert_clean(at)
    run_id = at.selectbox(key="i_run").value
    slider = at.select_slider(key=f"i_sigma_{run_id}")
    assert slider.value == pytest.approx(1.0, rel=0.2)  # starts at the length scale
    charts = at.get("plotly_chart")
    assert len(charts) >= 4  # bars, sweep, probes, violins across the two seeds
    smallest = slider.options[0]  # options are the formatted σ values
    slider.set_value(float(smallest)).run()
    assert_clean(at)
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert bars["layout"]["title"]["text"].endswith(f"σ = {smallest}")  # the bars follow σ
    at.number_input(key="i_mine_steps").set_value(200)
    at.button(key="i_mine").click().run()  # the MINE spot check, a few hundred steps
    assert_clean(at)
    assert any("MINE (200 steps)" in m.value for m in at.markdown)


def test_retrieval_and_compare_pages(trained_home, monkeypatch):
    home, ids = trained_home
    at = start(home, "views/retrieval.py", monkeypatch)
    assert_clean(at)
    assert len(at.get("image")) >= 2  # query + neighbours
    at.button(key="r_random").click().run()
    assert_clean(at)
    at.switch_page("views/compare.py").run()
    assert_clean(at)
    assert set(at.multiselect(key="c_runs").value) == set(ids)
    assert len(at.get("plotly_chart")) == 1 + len(ids)


def test_cancel_button_stops_a_run(acc_home):
    import dataclasses

    from acc_core.store import RunStore

    store = RunStore(acc_home)
    cfg = tiny_config(seed=3)
    rec = store.submit(cfg.replace(train=dataclasses.replace(cfg.train, steps=5000)))
    at = start(acc_home, "views/train.py")  # the watcher starts a worker for the queued run
    try:
        assert_clean(at)
        at.button(key=f"cancel_{rec.run_id}").click().run()
        assert not at.exception
        deadline = time.time() + TIMEOUT
        while store.get(rec.run_id).status != "cancelled" and time.time() < deadline:
            time.sleep(0.5)
        assert store.get(rec.run_id).status == "cancelled"
    finally:
        stop_workers(acc_home)


def test_failed_run_shows_its_reason(tmp_path, monkeypatch):
    from acc_core.store import RunStore

    store = RunStore(tmp_path / "runs")
    rec = store.submit(tiny_config(seed=7))
    store.finish(rec.run_id, "failed", step=3, reason="non-finite loss (nan) at step 4")
    at = start(tmp_path / "runs", "views/train.py", monkeypatch)
    assert not at.exception
    assert any("non-finite loss (nan) at step 4" in e.value for e in at.error)
    assert any(b.key == f"retry_{rec.run_id}" for b in at.button)


def test_home_example_sets_are_a_real_draw(acc_home):
    """The shipped Home picture equals a fresh draw of the sampler and renderer, and every
    image of a set shares its inactive factors (wall and floor hue) while others vary."""
    import importlib.util

    import numpy as np

    path = REPO / "app" / "assets" / "make_home_sets.py"
    spec = importlib.util.spec_from_file_location("make_home_sets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.draw()
    with np.load(REPO / "app" / "assets" / "home_sets.npz", allow_pickle=False) as z:
        shipped = {k: z[k] for k in z.files}
    assert set(shipped) == set(fresh)
    for k in fresh:
        np.testing.assert_array_equal(shipped[k], fresh[k], err_msg=k)
    names = list(fresh["factor_names"])
    for s in fresh["factors"]:  # (set_size, 6)
        for k, name in enumerate(names):
            same = bool((s[:, k] == s[0, k]).all())
            assert same == (name in mod.INACTIVE), name


SHIPPED = REPO / "pretrained"


def test_peer_method_runs_open_on_every_page(acc_home, monkeypatch):
    """Shipped LORD and VAE runs: a representation picker, the method's own views, noise
    relative to the RMS radius, derived style colourings for digits, and Compare by scenario."""
    from acc_core import pretrained

    monkeypatch.setenv("ACC_PRETRAINED_DIR", str(SHIPPED))
    ids = {p["name"]: p["run_id"] for p in pretrained.list_pretrained(SHIPPED)}
    lord = ids["shapes3d-wall-hue-lord"]
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.session_state["selected_run"] = lord
    at.run()
    at.switch_page("views/embeddings.py").run()
    assert_clean(at)
    assert at.selectbox(key="e_run").value == lord
    rep = at.selectbox(key=f"e_rep_{lord}")
    assert rep.options == ["content", "class"]
    rep.set_value("class").run()
    assert_clean(at)
    assert any(s.value == "Content transfer" for s in at.subheader)
    at.switch_page("views/information.py").run()
    assert_clean(at)
    assert any("RMS radius" in c.value for c in at.caption)
    at.switch_page("views/retrieval.py").run()
    assert_clean(at)
    compare = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    compare.query_params["runs"] = lord  # a link to a comparison: compare?runs=<id>
    compare.run()
    compare.switch_page("views/compare.py").run()
    assert_clean(compare)
    assert compare.multiselect(key="c_runs").value == [lord]
    compare.toggle(key="c_methods").set_value(True).run()
    assert_clean(compare)
    heat = json.loads(compare.get("plotly_chart")[0].proto.spec)
    labels = " ".join(heat["data"][0]["y"])
    for method in ("(lord)", "(acc)", "(beta_vae)", "(ml_vae)", "(ada_gvae)"):
        assert method in labels

    vae = ids["digits-style-ml-vae"]
    at.session_state["selected_run"] = vae
    at.switch_page("views/embeddings.py").run()
    assert_clean(at)
    assert any(s.value == "Latent traversals" for s in at.subheader)
    at.selectbox(key="e_colour").set_value("slant (derived)").run()
    assert_clean(at)
    assert "coloured by slant" in at.get("plotly_chart")[1].proto.spec


def test_an_unreadable_run_is_named_and_the_others_still_show(trained_home, monkeypatch):
    import shutil
    import sqlite3

    home, ids = trained_home
    copy = home.parent / "with-a-broken-row"
    shutil.copytree(home, copy)
    con = sqlite3.connect(copy / "runs.sqlite")
    con.execute("INSERT INTO runs (run_id, label, config_json, status, created_at, updated_at)"
                " VALUES ('badbadbadbad', 'x', '{not json', 'done', 0, 0)")
    con.commit()
    con.close()
    for page in (None, "views/information.py", "views/compare.py"):
        at = start(copy, page, monkeypatch)
        assert not at.exception
        assert any("badbadbadbad" in w.value for w in at.warning)
        if page is None:
            assert set(at.dataframe[0].value["id"]) >= {i[:8] for i in ids}

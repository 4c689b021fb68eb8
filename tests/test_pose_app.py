"""The Pose page (app/views/pose.py), headless, over a tiny pose run trained by the worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from test_pose_method import tiny

HOME = str(Path(__file__).resolve().parents[1] / "app" / "Home.py")


@pytest.fixture(scope="module")
def pose_home(tmp_path_factory):
    from acc_core.store import RunStore
    from acc_core.worker import run_worker

    home = tmp_path_factory.mktemp("pose") / "runs"
    store = RunStore(home)
    run_id = store.submit(tiny(regression_weight=1.0)).run_id
    run_worker(home, device="cpu", once=True, poll=0.1)
    assert store.get(run_id).status == "done"
    return home


def open_page(home, monkeypatch) -> AppTest:
    monkeypatch.setenv("ACC_HOME", str(home))
    at = AppTest.from_file(HOME, default_timeout=180).run()
    at.switch_page("views/pose.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_pose_page_without_runs_says_what_to_do(acc_home, monkeypatch):
    at = open_page(acc_home, monkeypatch)
    assert any("No finished pose run" in i.value for i in at.info)


def test_pose_page_shows_neighbours_tables_and_histogram(pose_home, monkeypatch):
    at = open_page(pose_home, monkeypatch)
    assert at.title[0].value == "Pose transfer"
    table = at.dataframe[0].value
    assert len(table) == 3  # ACC lookup, untrained lookup, regression head
    md = " ".join(m.value for m in at.markdown)
    assert "Query (real)" in md and "ACC: nearest synthetic images" in md
    assert "untrained network: nearest synthetic images" in md
    at.slider(key="pose_query").set_value(7).run()
    at.radio(key="pose_cat").set_value("chair").run()
    assert not at.exception and not at.error


def test_train_page_takes_the_pose_scenario(acc_home, monkeypatch):
    monkeypatch.setenv("ACC_HOME", str(acc_home))
    at = AppTest.from_file(HOME, default_timeout=180).run()
    at.switch_page("views/train.py").run()
    at.selectbox(key="t_source").set_value("pose-procedural").run()
    at.selectbox(key="t_method").set_value("acc_pose").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    text = " ".join(i.value for i in at.info)
    assert "Supervision (acc_pose)" in text and "no pose label reaches the ACC loss" in text

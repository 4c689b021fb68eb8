"""The app shows a sweep's progress on Home and a configuration's seeds as distributions on
the Information and Compare pages (the ACC paper's Figure 3c)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_shapes_config
from streamlit.testing.v1 import AppTest

HOME = str(Path(__file__).resolve().parents[1] / "app" / "Home.py")


@pytest.fixture(scope="module")
def swept_home(tmp_path_factory):
    """Three finished seeds of the tiny config, trained by a local sweep named 'tiny'."""
    from acc_core import sweep_run
    from acc_core.store import RunStore

    home = tmp_path_factory.mktemp("swept") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACC_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
        out = sweep_run.run_sweep([tiny_shapes_config(seed=s, steps=6, probe_size=120)
                                   for s in range(3)], store=RunStore(home), engine="local",
                                  name="tiny")
    assert out["done"] == 3
    return home, out["run_ids"]


def start(home, monkeypatch, page=None) -> AppTest:
    monkeypatch.setenv("ACC_HOME", str(home))
    at = AppTest.from_file(HOME, default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def violin_specs(at) -> list[dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [s for s in specs if any(t.get("type") == "violin" for t in s["data"])]


def test_home_shows_each_sweeps_progress(swept_home, monkeypatch):
    from acc_core import sweep

    home, ids = swept_home
    sweep.record_sweep(home, "half-done", ids[:1] + ["0123456789ab"])  # one run not trained yet
    at = start(home, monkeypatch)
    bars = {p.proto.text: p.proto.value for p in at.get("progress")}
    assert bars["**tiny**: 3 done · 0 running · 0 failed of 3 runs"] == 100
    assert bars["**half-done**: 1 done · 0 running · 0 failed of 2 runs"] == 50


def test_information_shows_the_seeds_as_violins_with_mean_and_spread(swept_home, monkeypatch):
    home, ids = swept_home
    at = start(home, monkeypatch, "views/information.py")
    [spec] = violin_specs(at)
    trained = [t for t in spec["data"] if t["name"] == "trained network"]
    assert len(trained) == 1 and len(trained[0]["y"]) == 3 * 6  # 3 seeds x 6 factors
    assert trained[0]["meanline"]["visible"]
    assert any(len(s.value) == 1 and s.value["seeds"].iloc[0] == 3 for s in at.dataframe)
    assert spec["layout"]["shapes"]  # the inactive factor (wall hue) is shaded


def test_compare_aggregates_seeds_on_demand(swept_home, monkeypatch):
    home, ids = swept_home
    at = start(home, monkeypatch, "views/compare.py")
    assert not violin_specs(at)  # off by default: the heatmap and projections only
    at.toggle(key="c_seeds").set_value(True).run()
    assert not at.exception and not at.error
    [spec] = violin_specs(at)
    assert {t["name"] for t in spec["data"]} == {"trained network", "untrained network"}
    # the three chosen runs are seeds of one configuration: one panel of three seeds
    assert all(len(t["y"]) == 3 * 6 for t in spec["data"])
    assert "3 seed(s)" in spec["layout"]["annotations"][0]["text"]

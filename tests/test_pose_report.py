"""docs/make_pose_report.py: its configs and the section it writes (from made-up scores)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("make_pose_report", REPO / "docs" / "make_pose_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_scores(median):
    s = {"median_error": median, "acc30": 1 - median / 180, "flip_median_error": median / 2,
         "flip_acc30": 1 - median / 360, "n": 360}
    return {"car": s, "chair": s}


def test_configs_are_the_four_rows(report):
    cfgs = report.configs(32, 20, 0)
    assert list(cfgs) == ["acc", "regression", "regression+acc", "regression+acc+real", "acc+swap"]
    assert len({c.run_id for c in cfgs.values()}) == 5
    assert cfgs["acc+swap"].params.background_swap == 0.5 and cfgs["acc"].params.background_swap is False
    assert cfgs["acc"].params.regression_weight == 0 and cfgs["regression"].params.acc_weight == 0
    assert cfgs["regression+acc+real"].params.real_fraction == 0.02
    assert all(c.data.image_size == 32 and c.train.steps == 20 for c in cfgs.values())


def test_section_states_paper_and_ours_and_replaces_itself(report, tmp_path, monkeypatch):
    cfgs = report.configs(32, 20, 0)
    runs = {}
    for (k, c), m in zip(cfgs.items(), (50.0, 30.0, 25.0, 20.0, 50.0)):
        runs[k] = {"run_id": c.run_id, "config": c.to_dict(), "scores": {
            "lookup": fake_scores(40.0), "untrained": fake_scores(90.0), "regression": fake_scores(m)}}
    text = report.section(runs, None, None)
    assert text.startswith(report.BEGIN) and text.rstrip().endswith(report.END)
    assert "14.1" in text and "| ACC (ours) | car | 40.0 | 0.78 | 20.0 |" in text
    # ACC 40° vs untrained 90°: reproduced; regression 30° -> + ACC 25°: within the margin
    assert "acc@30 0.78 vs 0.50: reproduced" in text
    assert "ours 30.0° -> 25.0°: not distinguishable" in text
    assert "ACC + background swap from half-way (ours) | chair | 40.0" in text
    doc = tmp_path / "REPRODUCTION.md"
    doc.write_text("# Report\n\nearlier sections\n")
    monkeypatch.setattr(report, "REPORT", doc)
    report.write_section(text)
    report.write_section(text)  # a second run replaces the section, never appends it twice
    body = doc.read_text()
    assert body.count(report.BEGIN) == 1 and body.startswith("# Report\n\nearlier sections")

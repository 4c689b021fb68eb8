"""The leaderboard: scores cached by the worker when a run finishes, rows per configuration with
mean and spread over seeds, `acc leaderboard`, and the page (headless)."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from conftest import REPO, tiny_shapes_config

from acc_core import evaluate, leaderboard
from acc_core.analysis import metrics


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """Two seeds of a tiny config, trained by the worker (which precomputes the scores)."""
    from acc_core.store import RunStore
    from acc_core.worker import run_worker

    home = tmp_path_factory.mktemp("lb") / "runs"
    store = RunStore(home)
    ids = [store.submit(tiny_shapes_config(seed, steps=6, probe_size=200)).run_id for seed in (0, 1)]
    run_worker(home, device="cpu", once=True, poll=0.1, precompute=True)
    assert [store.get(i).status for i in ids] == ["done", "done"]
    return home, store, ids


def test_the_worker_caches_the_scores_and_seeds_share_a_row(two_seeds, monkeypatch):
    home, store, ids = two_seeds
    recs = [store.get(i) for i in ids]
    assert all(leaderboard.cached(r.dir) for r in recs)

    def refuse(*a, **k):
        raise AssertionError("the leaderboard computed a score instead of reading it")

    monkeypatch.setattr(metrics, "all_metrics", refuse)
    rows, skipped = leaderboard.rows(recs, "pca")
    assert skipped == [] and len(rows) == 1
    row = rows[0]
    assert row["n_seeds"] == 2 and sorted(row["runs"]) == sorted(ids)
    assert row["method"] == "acc" and row["scenario"] == "A[wall_hue] B[wall_hue]"
    each = [evaluate.metrics(r.dir, align="pca")["mig"] for r in recs]
    assert row["mig"] == pytest.approx(sum(each) / 2)
    assert row["mig_std"] == pytest.approx(abs(each[0] - each[1]) / 2)
    assert row["mi_inactive"] is not None and row["mi_active"] is not None


def test_an_uncached_run_is_skipped_then_scored_on_request(two_seeds, tmp_path):
    import shutil

    _, store, ids = two_seeds
    rec = store.get(ids[0])
    for f in list((rec.dir / "eval").glob("metrics_*")):
        shutil.move(str(f), tmp_path / f.name)
    try:
        rows, skipped = leaderboard.rows([rec], "none")
        assert rows == [] and len(skipped) == 1
        rows, skipped = leaderboard.rows([rec], "none", compute=True)
        assert len(rows) == 1 and skipped == []
    finally:
        for f in tmp_path.glob("metrics_*"):
            shutil.move(str(f), rec.dir / "eval" / f.name)


def test_bad_alignment_is_a_clear_error(two_seeds):
    _, store, ids = two_seeds
    with pytest.raises(ValueError, match="alignment"):
        leaderboard.run_scores(store.get(ids[0]).dir, "varimax")


def acc(*args, home):
    import os

    env = dict(os.environ, ACC_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "acc_core.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


def test_cli_prints_the_shipped_leaderboard_and_writes_csv(tmp_path):
    out = acc("leaderboard", home=tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    for method in ("acc", "lord", "beta_vae", "ml_vae", "ada_gvae"):
        assert f"\n{method} " in out.stdout
    assert "no cached scores" not in out.stderr  # every shipped run ships its scores
    path = tmp_path / "lb.csv"
    out = acc("leaderboard", "--align", "ica", "--method", "lord", "--csv", str(path),
              home=tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    with open(path) as f:
        table = list(csv.DictReader(f))
    assert table and {r["method"] for r in table} == {"lord"}
    assert {"mig", "explicitness", "mi_active", "runs"} <= set(table[0])
    bad = acc("leaderboard", "--align", "varimax", home=tmp_path / "runs")
    assert bad.returncode == 2 and "varimax" in bad.stderr


def test_leaderboard_page_shows_shipped_rows_with_links(acc_home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app" / "Home.py"), default_timeout=120).run()
    at.switch_page("views/leaderboard.py").run()
    assert not at.exception and not at.error
    df = at.dataframe[0].value
    assert len(df) >= 10 and df["open"].str.startswith("compare?runs=").all()
    assert not at.warning  # nothing left to score: shipped runs carry their scores
    at.radio(key="lb_align").set_value("ica").run()
    assert not at.exception and not at.error

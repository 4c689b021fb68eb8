"""A new user's first hour: what they type and read first says what it does.

Launching settings another tab already launched attaches to that run; the learning-rate
stepper moves by small steps; `acc pretrained list` keeps its columns apart and `acc
pretrained reproduce` shows progress and a verdict; a worker started from the command line
does not idle for ten minutes; captions name factors and never round a share up to 100%;
Compare labels runs without supervision as such and measures each run at its own scale;
the run store is the user's, wherever a command runs; the first commands train something new.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from acc_core.config import preset

REPO = Path(__file__).resolve().parents[1]
HOME = str(REPO / "app" / "Home.py")
sys.path.insert(0, str(REPO / "app"))


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ----- Train page ------------------------------------------------------------------------------
def test_a_second_tab_attaches_to_the_run_the_first_launched(acc_home, monkeypatch):
    from acc_core import worker
    from acc_core.store import RunStore

    monkeypatch.setattr(worker, "ensure_worker", lambda *a, **k: False)  # nothing trains here
    first = start("views/train.py")
    first.button(key="t_launch").click().run()
    assert any(s.value.startswith("Queued 1 run(s).") for s in first.success)
    second = start("views/train.py")  # a second tab: same default form, same run
    second.button(key="t_launch").click().run()
    msgs = [s.value for s in second.success]
    assert any("Attached to 1 run(s) already queued" in m for m in msgs) and not any(
        "Queued" in m for m in msgs), msgs
    store = RunStore(acc_home)
    (rec,) = store.list_runs(include_pretrained=False)
    assert store.claim(rec.run_id, "worker-test", os.getpid())  # a worker picks it up
    third = start("views/train.py")
    third.button(key="t_launch").click().run()
    msgs = [s.value for s in third.success]
    assert any("Attached to 1 run(s) already training" in m for m in msgs), msgs


def test_launch_message_per_run():
    import views.train as train_view

    rec = lambda status: type("R", (), {"status": status})()  # noqa: E731
    assert train_view.launch_message([None, "failed"], [rec("queued"), rec("queued")]) == "Queued 2 run(s)."
    msg = train_view.launch_message(["running", "done"], [rec("running"), rec("done")])
    assert msg.startswith("Attached to 1 run(s) already training") and "1 already trained" in msg


def test_the_learning_rate_steps_by_a_small_amount(acc_home):
    at = start("views/train.py")
    lr = at.number_input(key="t_lr")
    assert lr.value == pytest.approx(3e-4)
    lr.increment().run()
    assert at.number_input(key="t_lr").value == pytest.approx(3.1e-4)
    at.number_input(key="t_lr").decrement().decrement().run()
    assert at.number_input(key="t_lr").value == pytest.approx(2.9e-4)


def test_the_train_form_and_the_first_commands_train_something_new(acc_home, monkeypatch):
    from acc_core import worker
    from acc_core.cli import build_parser, config_from_args, first_new_seed
    from acc_core.store import RunStore

    monkeypatch.setattr(worker, "ensure_worker", lambda *a, **k: False)  # nothing trains here
    store = RunStore(acc_home)
    at = start("views/train.py")
    cfg = preset("quick", "shapes3d-procedural")
    seed = int(at.text_input(key="t_seeds").value)
    form = cfg.replace(train=dataclasses.replace(cfg.train, seed=seed))
    assert store.get(form.run_id) is None  # the form starts on a new seed, even where the
    # preset's own seed is shipped
    first = next(line for line in (REPO / "README.md").read_text().splitlines()
                 if line.startswith("acc train"))
    args = build_parser().parse_args(first.split("#")[0].split()[1:])
    from_readme = config_from_args(args)
    assert store.get(from_readme.run_id) is None, first
    assert from_readme == cfg.replace(train=dataclasses.replace(cfg.train, seed=args.seed)), first
    new = first_new_seed(store)
    assert store.get(cfg.replace(train=dataclasses.replace(cfg.train, seed=new)).run_id) is None
    at.button(key="t_launch").click().run()  # the form launches the quick preset itself, every
    (rec,) = store.list_runs(include_pretrained=False)  # named option (output gain, bf16) kept
    assert rec.run_id == form.run_id


# ----- the command line --------------------------------------------------------------------------
def acc(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "acc_core.cli", *argv], capture_output=True,
                          text=True, timeout=300, **kw)


def test_pretrained_list_keeps_its_columns_apart():
    r = acc("pretrained", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header, rows = lines[0], lines[1:]
    start_run, start_method = header.index("run"), header.index("method")
    longest = max(rows, key=lambda row: len(row.split()[0]))
    assert len(longest.split()[0]) > 25  # long names are there to test
    for row in rows:
        assert row[start_run - 2:start_run] == "  " and re.fullmatch(r"[0-9a-f]{12}", row[start_run:start_run + 12])
        assert row[start_method - 2:start_method] == "  " and row[start_method] != " "


def test_reproduce_shows_progress_and_a_verdict(shipped):
    r = acc("pretrained", "reproduce", "tiny", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "retraining tiny: [" in r.stderr and "6/6" in r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("REPRODUCED")
    assert not r.stdout.lstrip().startswith("{")  # a verdict, not raw JSON


def test_a_queued_cli_run_gets_a_worker_that_does_not_idle_for_minutes(acc_home, monkeypatch):
    from acc_core import cli, worker

    seen = {}
    monkeypatch.setattr(worker, "ensure_worker", lambda root, **k: seen.update(k) or True)
    assert cli.main(["train", "--steps", "3", "--seed", "11", "--queue"]) == 0
    assert seen["exit_with_me"] is False and seen["idle_exit"] <= 60


def test_acc_runs_elsewhere_uses_the_users_store(tmp_path):
    cwd, home = tmp_path / "somewhere", tmp_path / "home"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ACC_HOME", "XDG_DATA_HOME")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    r = acc("runs", "--user-only", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    store = home / ".local" / "share" / "acc-explorer" / "runs"
    assert f"run store: {store}" in r.stdout
    assert list(cwd.iterdir()) == []  # no stray runs/ where the command ran
    m = re.search(r"acc train --preset quick --seed (\d+)", r.stdout)
    from acc_core.store import RunStore

    cfg = preset("quick", "shapes3d-procedural")
    suggested = cfg.replace(train=dataclasses.replace(cfg.train, seed=int(m.group(1))))
    assert RunStore(tmp_path / "empty").get(suggested.run_id) is None  # not a shipped run
    env["ACC_HOME"] = str(tmp_path / "mine")
    assert f"run store: {tmp_path / 'mine'}" in acc("runs", cwd=cwd, env=env).stdout


# ----- captions and labels -------------------------------------------------------------------------
def test_shares_are_never_rounded_up_to_a_whole():
    import common

    assert common.share_text(0.996) == "99.6%"
    assert common.share_text(0.99996) == "99.9%"
    assert common.share_text(1.0) == "100%"
    assert common.share_text(0.5) == "50.0%"


def test_neighbour_captions_name_the_shared_factors():
    import views.retrieval as retrieval

    names = ("floor_hue", "wall_hue", "shape")
    assert retrieval.neighbour_caption(names, [True, False, True]) == "same floor hue, shape"
    assert retrieval.neighbour_caption(names, [False] * 3) == "shares no factor value"


def test_compare_labels_and_each_runs_own_scale(acc_home):
    import common

    infonce = preset("quick", "shapes3d-procedural", method="hue_infonce")
    assert common.scenario_text(infonce) == "no supervision"
    acc_free = preset("quick", "shapes3d-procedural")
    acc_free = acc_free.replace(set_b=dataclasses.replace(acc_free.set_b, inactive=()))
    assert common.scenario_text(acc_free) == "inactive in A: wall_hue · B: unconstrained (a random sample)"
    at = AppTest.from_file(HOME, default_timeout=120)
    at.query_params["runs"] = "shapes3d-no-inactive,shapes3d-wall-hue-b-free,shapes3d-hue-infonce"
    at.run().switch_page("views/compare.py").run()
    assert not at.exception
    labels = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["y"]
    assert len(labels) == 3 and not any("inactive A: -" in y for y in labels), labels
    assert labels[0].endswith("<br>no factor held fixed · σ 1")  # ACC at tau = 1: sqrt(tau)
    assert labels[1].endswith("B: unconstrained (a random sample) · σ 1")
    assert labels[2].endswith("<br>no supervision · σ 0.447")  # cosine at tau = 0.1: sqrt(2 tau)


def test_information_caption_describes_the_dashed_coloured_lines(acc_home):
    at = start("views/information.py")
    text = " ".join(c.value for c in at.caption)
    assert "dashed lines in it" in text and "colour" in text


def test_embeddings_caption_states_the_pca_share_unrounded(acc_home):
    at = start("views/embeddings.py")
    text = " ".join(c.value for c in at.caption)
    m = re.search(r"the two PCA axes explain (\d+(?:\.\d)?)%", text)
    assert m and m.group(1) != "100.0"


# ----- UMAP by the worker ------------------------------------------------------------------------
def test_the_worker_computes_every_snapshots_umap_once_nothing_waits(acc_home):
    """The step slider's UMAPs: the first run's intermediate snapshots wait while another run
    is queued (it must not wait for them); the last run's are computed once the queue is empty."""
    from conftest import tiny_shapes_config

    from acc_core.store import RunStore
    from acc_core.worker import run_worker

    store = RunStore(acc_home)
    first, second = (store.submit(tiny_shapes_config(seed=s, steps=4, probe_size=200)) for s in (21, 22))
    assert run_worker(acc_home, once=True, poll=0.01, precompute=True) == 0
    umap = lambda rec, step: (store.get(rec.run_id).dir / "eval" / f"umap2_step{step:07d}.npz").exists()  # noqa: E731
    assert [store.get(r.run_id).status for r in (first, second)] == ["done", "done"]
    assert umap(first, 0) and umap(first, 4) and not umap(first, 2)
    assert umap(second, 0) and umap(second, 2) and umap(second, 4)


from test_pretrained import shipped  # noqa: E402,F401  (a tiny exported run: the fixture)

"""The shipped pretrained/ folder: complete, within its size budget, opened without computing."""

from __future__ import annotations

import pytest
import torch
from conftest import REPO

from acc_core import evaluate, leaderboard, pretrained, rundir
from acc_core.analysis import metrics, mi, probe, project, retrieval
from acc_core.analysis.metrics import ALIGNMENTS
from acc_core.config import RunConfig

SHIPPED = REPO / "pretrained"
LISTED = {p["name"]: p for p in pretrained.list_pretrained(SHIPPED)}


def test_the_folder_stays_under_30_mb():
    size = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert 0 < size < 30 * 1024 * 1024


def test_every_scenario_is_shipped_from_its_own_config():
    expected = {**pretrained.scenarios(), **pretrained.extra_scenarios(),
                **pretrained.method_scenarios()}
    missing = sorted(set(expected) - set(LISTED))
    assert not missing, f"not shipped: {missing}; `acc pretrained build NAME` trains and exports them"
    for name, (cfg, _) in expected.items():
        # `acc pretrained reproduce` retrains from config.json: it must be the scenario's
        assert LISTED[name]["run_id"] == cfg.run_id, name


def test_the_main_scenarios_ship_weights_that_load_weights_only():
    for name in pretrained.scenarios():
        if name in pretrained.LIGHT_MAIN:  # evaluation and seven snapshots, no weights
            assert not (SHIPPED / name / "checkpoint.pt").exists() and not LISTED[name]["weights"]
            assert len(list((SHIPPED / name / "snapshots").glob("step_*.npz"))) == 7
            continue
        assert LISTED[name]["weights"]
        ckpt = torch.load(SHIPPED / name / "checkpoint.pt", map_location="cpu", weights_only=True)
        assert ckpt["step"] == LISTED[name]["step"]
        assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())


@pytest.fixture
def nothing_heavy(acc_home, monkeypatch):
    """Every analysis that costs more than reading a file raises."""
    def refuse(*a, **k):
        raise AssertionError("a shipped run computed an analysis instead of loading it")

    for module, name in [(mi, "noise_sweep"), (mi, "gaussian_channel_mi_multi"),
                         (probe, "probe_accuracy"), (retrieval, "factor_agreement"),
                         (project, "pca"), (project, "umap"), (metrics, "all_metrics")]:
        monkeypatch.setattr(module, name, refuse)
    return acc_home


@pytest.mark.parametrize("name", sorted(LISTED))
def test_a_shipped_run_opens_by_loading_only(name, nothing_heavy):
    d = SHIPPED / name
    cfg = RunConfig.from_json((d / "config.json").read_text())
    for rep in cfg.method.representations:  # every code a picker offers
        sigma = evaluate.default_sigma(d, rep)
        for step in ("initial", "final"):  # what the pages show first
            assert evaluate.projection(d, step, "pca", rep=rep)["coords"].shape[1] == 2
            sweep = evaluate.noise_sweep(d, step, rep=rep)
            assert len(sweep["factor_names"]) == len(evaluate.embeddings(d)["factor_names"])
        values = evaluate.mi_at(d, sigma, rep=rep)
        assert values.shape == (len(sweep["factor_names"]),)
        assert set(evaluate.probes(d, rep=rep)) == set(sweep["factor_names"])
        assert set(evaluate.agreement(d, rep=rep)) == set(sweep["factor_names"])
    for step in rundir.snapshot_steps(d):  # shipped UMAPs: every step the slider offers
        assert evaluate.projection(d, step, "umap")["coords"].shape[1] == 2
    assert leaderboard.cached(d)  # the leaderboard's scores, every alignment
    for align in ALIGNMENTS:
        scores = leaderboard.run_scores(d, align, compute=False)
        assert scores["align"] == align and 0.0 <= scores["explicitness"] <= 1.0
    assert not (nothing_heavy / "pretrained-cache").exists()  # nothing was written either


@pytest.mark.parametrize("name", sorted(pretrained.method_scenarios()))
def test_peer_method_runs_ship_their_own_evaluation(name):
    """LORD's content transfer, the VAEs' traversals, the mixing autoencoder's chunk swaps and
    rci's z_p / z_n transfer come with the run: no weights needed."""
    ev = evaluate.model_eval(SHIPPED / name)
    assert ev is not None, f"{name} has no model evaluation"
    assert {"transfer_grid", "traversal", "chunk_swap", "zp_transfer_grid"} & set(ev["images"])
    if name.endswith("-lord") and name.startswith("shapes3d"):  # the grid holds every truth
        s = ev["scores"]
        for k in ("content_transfer_mse", "baseline_class_donor_mse", "baseline_content_donor_mse"):
            assert 0.0 <= s[k] < 1.0
        assert ev["images"]["transfer_grid"].shape == ev["images"]["transfer_truth"].shape


def test_acc_eval_of_a_shipped_run_reads_its_cache_and_leaves_it(nothing_heavy):
    d = SHIPPED / "shapes3d-wall-hue-paper"
    before = (d / "eval" / "report.json").read_bytes()
    text = evaluate.format_report(evaluate.report(d))
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[4:10]}
    assert set(rows) == {"floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"}
    assert "-0.00" not in text  # a Monte Carlo dip below zero prints as 0.00
    assert float(rows["wall_hue"][1 + 2]) < float(rows["floor_hue"][2])  # "*" shifts wall hue's columns
    assert (d / "eval" / "report.json").read_bytes() == before

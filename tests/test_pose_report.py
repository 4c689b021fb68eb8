"""docs/make_pose_report.py: its configs, its sweeps (the runs `acc sweep` trains), the verdicts
over seeds, and the section it writes (from made-up scores)."""

from __future__ import annotations

import importlib.util
import shlex
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
    return {"car": dict(s), "chair": dict(s)}


def test_configs_are_the_four_rows(report):
    cfgs = report.configs(32, 20, 0)
    assert list(cfgs) == ["acc", "regression", "regression+acc", "regression+acc+real"]
    assert len({c.run_id for c in cfgs.values()}) == 4
    assert cfgs["acc"].params.regression_weight == 0 and cfgs["regression"].params.acc_weight == 0
    assert cfgs["regression+acc+real"].params.real_fraction == 0.02
    assert cfgs["acc"].params.background_swap is True and cfgs["acc"].params.swap_ramp == 0.5
    assert all(c.data.image_size == 32 and c.train.steps == 20 for c in cfgs.values())
    assert report.configs(None, None, 3)["acc"].train.seed == 3


def test_each_sweep_is_the_runs_its_acc_sweep_command_trains(report):
    from acc_core import sweep
    from acc_core.cli import build_parser
    from acc_core.sweep_cli import spec_from_args

    for extra in ({}, report.overrides(32, 20)):
        for name, (method, _, fields, _) in report.SWEEPS.items():
            command = report.sweep_command(name, [0, 1], extra)
            args = build_parser().parse_args(shlex.split(command)[1:])
            want = [c.run_id for c in sweep.expand(sweep.grid_from(spec_from_args(args)))]
            got = report.sweep_grid(name, [0, 1], extra)
            assert sorted(c.run_id for _, _, c in got) == sorted(want), name
            if method == "acc_pose":  # the first row of an ablation is one of the report's runs
                own = "regression+acc" if "params.regression_weight" in fields else "acc"
                for seed in (0, 1):
                    first = next(c for _, s, c in got if s == seed)
                    assert first.run_id == report.configs(32 if extra else None, 20 if extra else None,
                                                          seed)[own].run_id, name


def test_judge_pairs_seeds_and_needs_every_seed_to_agree(report):
    assert report.judge([10.0, 12.0], [80.0, 85.0]).startswith("reproduced (2 seeds)")
    assert report.judge([80.0, 85.0], [10.0, 12.0]).startswith("not reproduced: the opposite")
    # a large mean difference carried by one seed is not enough
    assert report.judge([10.0, 90.0], [60.0, 60.0]).startswith("not distinguishable")
    assert report.judge([50.0], [55.0]).startswith("not distinguishable (mean difference -5.0°")
    assert report.judge([], [1.0]) == "not measured"
    assert report.compare([20.0, 25.0], [10.0, 10.0]) == "worse by 12.5° (in every seed)"
    assert report.compare([0.0, 0.0], [20.0, 30.0]) == "better by 25.0° (in every seed)"
    assert report.compare([12.0, 8.0], [10.0, 10.0]) == "within the margin (+0.0°)"


def test_the_mechanism_line_names_what_carries_the_transfer(report):
    def rows(median):
        return {str(s): {"scores": {"lookup": fake_scores(median)}} for s in (0, 1)}

    sweeps = {"pose-real-fraction": {"rows": {"0.055": rows(10.0), "0": rows(10.0)}},
              "pose-background-swap": {"rows": {"true": rows(10.0), "false": rows(90.0)}}}
    line = report.mechanism_line(sweeps, "car", [10.0, 10.0])
    assert "Without any real image in set B ACC looks up at 10.0°" in line
    assert "within the margin (+0.0°)" in line and "at 90.0° (worse by 80.0° (in every seed))" in line
    assert "add nothing measurable here; S5's background swap" in line
    sweeps["pose-real-fraction"]["rows"]["0"] = rows(60.0)
    assert "carry part of the transfer" in report.mechanism_line(sweeps, "car", [10.0, 10.0])
    assert report.mechanism_line({}, "car", [10.0]) is None


def fake_run(cfg, scores: dict, loss=2.0):
    return {"run_id": cfg.run_id, "config": cfg.to_dict(), "scores": scores,
            "train_seconds": 100.0, "steps_per_s": 8.0, "final_loss": loss}


def test_section_states_paper_and_ours_and_replaces_itself(report, tmp_path, monkeypatch):
    runs = {}
    for seed, shift in ((0, 0.0), (1, 4.0)):
        cfgs = report.configs(None, None, seed)
        med = {"acc": 10.0, "regression": 30.0, "regression+acc": 25.0, "regression+acc+real": 12.0}
        runs[str(seed)] = {k: fake_run(c, {
            "lookup": fake_scores(med[k] + shift), "untrained": fake_scores(80.0),
            "lookup_synthetic": fake_scores(0.0), "regression": fake_scores(med[k] + shift)})
            for k, c in cfgs.items()}
    acc = {s: runs[s]["acc"] for s in runs}
    sweeps = {
        "pose-ml-vae": {"command": report.sweep_command("pose-ml-vae", [0, 1], {}),
                           "what": "ML-VAE", "fields": [], "missing": [],
                           "rows": {"ml_vae": {s: fake_run(report.configs(None, None, int(s))["acc"],
                                                           {"lookup": fake_scores(75.0)})
                                               for s in runs}}},
        "pose-swap-ramp": {"command": report.sweep_command("pose-swap-ramp", [0, 1], {}),
                           "what": "the swap's ramp", "fields": ["params.swap_ramp"], "missing": [],
                           "rows": {"0.5": acc, "0": {s: fake_run(report.configs(None, None, int(s))["acc"],
                                                                  {"lookup": fake_scores(88.0)}, loss=3.466)
                                                      for s in runs}}},
        "pose-set-size": {"command": report.sweep_command("pose-set-size", [0, 1], {}),
                          "what": "the set size", "fields": ["train.set_size"], "missing": ["abc"],
                          "rows": {}},
    }
    text = report.section(runs, sweeps, {"runs": {}, "sweeps": {}})
    assert text.startswith(report.BEGIN) and text.rstrip().endswith(report.END)
    assert "14.1" in text  # the paper's ACC row
    assert "| ACC (ours) | car | 12.0 ± 2.8 | 0.93 ± 0.02 | 6.0 ± 1.4 |" in text
    assert "| ML-VAE (ours, style latent) | chair | 75.0 ± 0.0 |" in text
    assert "12.0° vs 80.0° (per seed 10.0, 14.0 vs 80.0, 80.0): reproduced (2 seeds)" in text
    assert "ACC against ML-VAE on the same instances (its style latent): 12.0° vs 75.0°" in text
    # Table 2: 32° -> 27° is within the margin; 27° -> 14° with real images is beyond it
    assert "Ours 32.0° -> 27.0° (per seed 30.0, 34.0 -> 25.0, 29.0): not distinguishable" in text
    assert "with real images 14.0° (per seed 12.0, 16.0): reproduced (2 seeds)" in text
    assert "| 0 | 2 | 88.0 ± 0.0 |" in text and "| 3.47 ± 0.00 |" in text
    assert "0 against 0.5: car worse by 76.0° (in every seed)" in text
    assert "Not trained yet (1 runs)" in text and "--set train.set_size=32,16" in text
    assert "--seeds 0-1" in text
    assert "collapsed to one embedding for every image in 2 of 2 seeds" in text
    doc = tmp_path / "REPRODUCTION.md"
    doc.write_text("# Report\n\nearlier sections\n")
    monkeypatch.setattr(report, "REPORT", doc)
    report.write_section(text)
    report.write_section(text)  # a second run replaces the section, never appends it twice
    body = doc.read_text()
    assert body.count(report.BEGIN) == 1 and body.startswith("# Report\n\nearlier sections")

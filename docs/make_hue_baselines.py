"""Figure 3c, bottom, of docs/REPRODUCTION.md: our hue double-augmentation baseline beside the
one the ACC paper's reference code trains.

    acc sweep --method hue_infonce_ref --data shapes3d-procedural --seeds 0-4
    python docs/make_hue_baselines.py

`hue_infonce` (ours, shipped as pretrained/shapes3d-hue-infonce and its -seedN copies): a hue
rotation per image, on both sets, symmetric InfoNCE with cosine similarity at tau = 0.1.
`hue_infonce_ref` (the reference code's `run_augmentation_experiment`): one hue rotation per
stack and copy, one unconstrained stack, one-direction cross-entropy with squared L2 at
tau = 1. Both at the quick preset, seeds 0-4; each measured at its own length scale
(`acc_core.losses.loss_length_scale`). Reads the reference runs from the run store (ACC_HOME)
and writes docs/results/hue_baselines.json and the table between the
`<!-- hue-baselines -->` markers of docs/REPRODUCTION.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))

from acc_core import evaluate  # noqa: E402
from acc_core.config import RunConfig, preset  # noqa: E402
from acc_core.runview import REL_SIGMA  # noqa: E402
from make_reproduction import FACTORS, _mean_sd, rms_radius, seed_runs  # noqa: E402

SEEDS = range(5)
SWEEP = "acc sweep --method hue_infonce_ref --data shapes3d-procedural --seeds 0-4"
MARK = re.compile(r"<!-- hue-baselines -->.*?<!-- /hue-baselines -->", re.S)


def reference_runs(store) -> tuple[list[Path], list[int]]:
    """The reference variant's finished runs in `store`, and the seeds still missing."""
    cfg = preset("quick", "shapes3d-procedural", method="hue_infonce_ref")
    runs, missing = [], []
    for seed in SEEDS:
        rec = store.get(cfg.replace(train=dataclasses.replace(cfg.train, seed=seed)).run_id)
        if rec is not None and rec.status == "done":
            runs.append(rec.dir)
        else:
            missing.append(seed)
    return runs, missing


def summarise(runs: list[Path], title: str) -> dict:
    reps = [evaluate.report(r) for r in runs]
    cfg = RunConfig.from_json((runs[0] / "config.json").read_text())
    t = cfg.train
    radii = [rms_radius(evaluate.embeddings(r, "final")["u"]) for r in runs]
    # A scale-free reading beside the length scale's: noise at a quarter of each run's own
    # RMS radius (as the app states it for codes without a length scale).
    rel = [dict(zip(FACTORS, evaluate.mi_at(r, REL_SIGMA * rad).tolist())) for r, rad in zip(runs, radii)]
    row = {"title": title, "method": t.method, "seeds": len(reps), "similarity": t.similarity,
           "temperature": t.temperature, "sigma": reps[0]["sigma"], "rms_radius_per_seed": radii,
           "rms_radius_trained": _mean_sd(radii), "factors": {}}
    for f in FACTORS:
        row["factors"][f] = {k: _mean_sd([rep["factors"][f][k] for rep in reps])
                             for k in ("final_mi", "final_probe", "final_agreement", "initial_agreement")}
        row["factors"][f]["mi_quarter_radius"] = _mean_sd([m[f] for m in rel])
        row["factors"][f]["probe_chance"] = reps[0]["factors"][f]["probe_chance"]
        row["factors"][f]["entropy"] = reps[0]["entropy"][f]
        row["factors"][f]["agreement_chance"] = reps[0]["factors"][f]["agreement_chance"]
    return row


def _rows(rows: list[dict], cell) -> list[str]:
    """One table line per baseline: its title, then cell(row, factor) for every factor."""
    return [f"| {r['title']} | " + " | ".join(cell(r, f) for f in FACTORS) + " |" for r in rows]


def markdown(rows: list[dict]) -> str:
    ms = lambda v: f"{v['mean']:.2f} ± {v['sd']:.2f}"  # noqa: E731
    rule = {"l2sq": "√τ", "l2": "τ", "cosine": "√(2τ)"}
    lines = ["| baseline | seeds | loss | σ | " + " | ".join(FACTORS) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in FACTORS) + " |",
             "| H(G), the most there is | | | | " + " | ".join(
                 f"{rows[0]['factors'][f]['entropy']:.2f}" for f in FACTORS) + " |"]
    for r in rows:
        loss = f"{r['similarity']}, τ = {r['temperature']:g}"
        lines.append(f"| {r['title']} | {r['seeds']} | {loss} | {rule[r['similarity']]} = {r['sigma']:.2f} | "
                     + " | ".join(ms(r["factors"][f]["final_mi"]) for f in FACTORS) + " |")
    lines += ["", f"MI at σ = {REL_SIGMA:g} x each run's own RMS radius (scale-free):", "",
              "| baseline | " + " | ".join(FACTORS) + " |", "| --- | " + " | ".join("---" for _ in FACTORS) + " |"]
    lines += _rows(rows, lambda r, f: ms(r["factors"][f]["mi_quarter_radius"]))
    lines += ["", "Probe accuracy at each run's own length scale (chance in the header):", "",
              "| baseline | " + " | ".join(
                  f"{f} ({rows[0]['factors'][f]['probe_chance']:.2f})" for f in FACTORS) + " |",
              "| --- | " + " | ".join("---" for _ in FACTORS) + " |"]
    lines += _rows(rows, lambda r, f: ms(r["factors"][f]["final_probe"]))
    lines += ["", "kNN agreement (k = 10), untrained -> trained:", "",
              "| baseline | " + " | ".join(
                  f"{f} ({rows[0]['factors'][f]['agreement_chance']:.2f})" for f in FACTORS) + " |",
              "| --- | " + " | ".join("---" for _ in FACTORS) + " |"]
    lines += _rows(rows, lambda r, f: f"{r['factors'][f]['initial_agreement']['mean']:.2f} -> "
                                      f"{r['factors'][f]['final_agreement']['mean']:.2f}")
    lines += ["", "MI in nats, mean ± sd over seeds. RMS radius of the trained embeddings, per "
              "seed: " + "; ".join(
                  f"{r['method']} " + ", ".join(f"{x:.2f}" for x in r["rms_radius_per_seed"]) for r in rows) + ". "
              f"Produced by `{SWEEP}` and then `python docs/make_hue_baselines.py`."]
    return "\n".join(lines)


def fill(doc: Path, body: str) -> bool:
    text = doc.read_text()
    if not MARK.search(text):
        return False
    doc.write_text(MARK.sub(lambda _: f"<!-- hue-baselines -->\n{body}\n<!-- /hue-baselines -->", text))
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc", default=str(REPO / "docs" / "REPRODUCTION.md"))
    ap.add_argument("--results", default=str(REPO / "docs" / "results" / "hue_baselines.json"))
    args = ap.parse_args(argv)
    from acc_core.store import RunStore

    ours = seed_runs("shapes3d-hue-infonce")
    ref, missing = reference_runs(RunStore())
    if missing or not ours:
        print(f"missing runs: reference seeds {missing or 'none'}, shipped hue_infonce "
              f"{'present' if ours else 'missing'}; train them first with `{SWEEP}`", file=sys.stderr)
        return 1
    rows = [summarise(ours, "ours: hue per image, symmetric InfoNCE (hue_infonce)"),
            summarise(ref, "reference code: one hue per stack (hue_infonce_ref)")]
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    body = markdown(rows)
    print(body)
    print(f"wrote {out}" + (f" and {args.doc}" if fill(Path(args.doc), body) else
                             f"; {args.doc} has no <!-- hue-baselines --> markers"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

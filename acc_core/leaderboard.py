"""The leaderboard: every finished run of every method, one row per configuration (method x
scenario x settings), mean and spread over its seeds, one column per score.

Scores per run, all cached with the run (computed by the worker when a run finishes, shipped
with shipped runs), so the table is read, not computed:
- the standard disentanglement scores of `acc_core.analysis.metrics` on the final probe, after a
  named alignment (`none`, `pca`, `ica`);
- this project's rotation-free measures from the run's standard report (`evaluate.report`):
  noise-swept mutual information of the active and the inactive factors at the report's noise
  scale, and the probes' and neighbours' accuracy on the active factors.

Departure from the reference recipe (named wherever the scores are shown): disentanglement_lib
draws 10,000 + 5,000 fresh points per metric; here each run is scored on its final probe (its
`probe_size` images, split 2:1), the sample every run has, so that shipped runs without weights
are scored exactly like runs trained here.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np

from acc_core.analysis.metrics import ALIGNMENTS, SCORES

OWN = {  # this project's measures: name -> title
    "mi_active": "MI active (nats)",
    "mi_inactive": "MI inactive (nats)",
    "probe_active": "probe acc. active",
    "knn_active": "kNN agreement active",
}
COLUMNS = {**{k: t for k, (t, _) in SCORES.items()}, **OWN}


def _config_key(cfg) -> tuple[str, str]:
    """(key, short hash) of the configuration without its seed: the seeds of one row."""
    d = cfg.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k != "seed"}
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha1(text.encode()).hexdigest()[:8]


def scenario_label(cfg) -> str:
    a = ",".join(cfg.set_a.inactive) or "-"
    b = ",".join(cfg.set_b.inactive) or "unconstrained"
    return f"A[{a}] B[{b}]"


def _own_scores(report: dict) -> dict:
    inactive = set(report.get("inactive") or ())
    fac = report["factors"]
    act = [n for n in fac if n not in inactive]
    ina = [n for n in fac if n in inactive]

    def mean(names, key):
        return float(np.mean([fac[n][key] for n in names])) if names else None

    return {"mi_active": mean(act, "final_mi"), "mi_inactive": mean(ina, "final_mi"),
            "probe_active": mean(act, "final_probe"), "knn_active": mean(act, "final_agreement")}


def run_scores(run_dir, align: str = "none", *, compute: bool = True) -> dict | None:
    """One run's scores (None when not cached and `compute` is False)."""
    from acc_core import evaluate

    if align not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {align!r}; choose one of {', '.join(ALIGNMENTS)}")
    if not compute and not cached(run_dir):
        return None
    scores = dict(evaluate.metrics(run_dir, "final", None, align))
    scores.update(_own_scores(_report(run_dir)))
    return scores


def _report_path(run_dir):
    """Where the run's standard report is (a shipped run's own, or the cache's), or None."""
    from acc_core import evaluate, rundir

    d, cfg = evaluate._run(run_dir)
    for p in (rundir.eval_dir(d) / "report.json", evaluate._write_path(d, cfg, "report.json")):
        if p.exists():
            return p
    return None


def _report(run_dir) -> dict:
    from acc_core import evaluate

    p = _report_path(run_dir)
    if p is not None:
        try:
            return json.loads(p.read_text())
        except ValueError:
            pass  # a damaged report is recomputed
    return evaluate.report(run_dir)


def cached(run_dir) -> bool:
    """Are the report and every alignment's scores already on disk?"""
    from acc_core import evaluate, rundir

    d, cfg = evaluate._run(run_dir)
    if _report_path(run_dir) is None:
        return False
    e = evaluate.embeddings(run_dir, "final")
    packed = evaluate._packed(str(rundir.eval_dir(d) / rundir.PACKED_EVAL))
    for a in ALIGNMENTS:
        name = evaluate.metrics_name(e, cfg, a)
        if name not in packed and not evaluate._cache_path(run_dir, name).exists():
            return False
    return True


def _variant(rec, cfg, short: str) -> str:
    if rec.source == "pretrained":
        return re.sub(r"-seed\d+$", "", rec.label)
    return f"user {short}"


def rows(records, align: str = "none", *, compute: bool = False, progress=None) -> tuple[list[dict], list[str]]:
    """Finished runs -> (rows, skipped labels). One row per configuration without its seed:
    method, dataset, scenario, variant, seeds, run ids, and per score its mean and std
    (`<score>` and `<score>_std`). Runs whose scores are not cached are skipped unless
    `compute` (their labels are returned)."""
    groups: dict[str, dict] = {}
    skipped = []
    done = [r for r in records if r.status == "done"]
    for i, rec in enumerate(done):
        if progress:
            progress(i, len(done), rec.label)
        try:
            s = run_scores(rec.dir, align, compute=compute)
        except (OSError, ValueError, KeyError) as e:
            skipped.append(f"{rec.label} ({e})")
            continue
        if s is None:
            skipped.append(rec.label)
            continue
        cfg = rec.config
        key, short = _config_key(cfg)
        g = groups.setdefault(key, {
            "method": cfg.train.method, "dataset": cfg.data.source,
            "scenario": scenario_label(cfg), "variant": _variant(rec, cfg, short),
            "runs": [], "seeds": [], "scores": []})
        g["runs"].append(rec.run_id)
        g["seeds"].append(cfg.train.seed)
        g["scores"].append(s)
    out = []
    for g in groups.values():
        row = {k: g[k] for k in ("method", "dataset", "scenario", "variant")}
        row["n_seeds"] = len(g["runs"])
        row["runs"] = g["runs"]
        row["n_probe"] = g["scores"][0].get("n")
        for col in COLUMNS:
            vals = [s[col] for s in g["scores"] if s.get(col) is not None]
            row[col] = float(np.mean(vals)) if vals else None
            row[f"{col}_std"] = float(np.std(vals)) if len(vals) > 1 else None
        out.append(row)
    out.sort(key=lambda r: (r["dataset"], r["scenario"], r["method"], r["variant"]))
    return out, skipped


def frame(rows_: list[dict]):
    """The rows as a pandas DataFrame (runs joined by commas), for the page and the CSV."""
    import pandas as pd

    df = pd.DataFrame(rows_)
    if len(df):
        df["runs"] = df["runs"].map(",".join)
    return df


def format_table(rows_: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """A plain-text table: mean ± std per score."""
    cols = columns or tuple(COLUMNS)
    head = ["method", "dataset", "scenario", "variant", "seeds"] + [COLUMNS[c] for c in cols]
    body = []
    for r in rows_:
        cells = [r["method"], r["dataset"], r["scenario"], r["variant"], str(r["n_seeds"])]
        for c in cols:
            m, s = r.get(c), r.get(f"{c}_std")
            cells.append("-" if m is None else f"{m:.2f}" + (f"±{s:.2f}" if s is not None else ""))
        body.append(cells)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*b) for b in body])

"""The tables of docs/REPRODUCTION.md, "Standard disentanglement metrics": the leaderboard of the
shipped runs (`acc leaderboard`), and seed 004's Table 3 (3dShapes) beside our measurements.

    python docs/make_leaderboard.py     # seconds: it reads the scores shipped with each run

Writes docs/results/leaderboard.json and the markdown tables into REPRODUCTION.md (between
their `<!-- table: ... -->` markers), and prints them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from acc_core import leaderboard  # noqa: E402
from acc_core.store import RunStore  # noqa: E402

COLS = ("mig", "sap", "irs", "factor_vae", "dci_disentanglement", "dci_informativeness",
        "modularity", "explicitness", "mi_active", "mi_inactive")
# Seed 004, Table 3, 3dShapes columns (MIG, SAP, IRS, FVAE, DCI): the paper's numbers.
TABLE3 = {"beta_vae": (0.194, 0.063, 0.473, 0.847, 0.246),
          "ada_gvae": (0.569, 0.150, 0.708, 0.996, 0.946),
          "rci": (0.716, 0.156, 0.784, 0.996, 0.919)}
TABLE3_COLS = ("mig", "sap", "irs", "factor_vae", "dci_disentanglement")


def cell(r, c):
    m, s = r.get(c), r.get(f"{c}_std")
    if m is None:
        return "-"
    return f"{m:.2f}" + (f" ± {s:.2f}" if s is not None else "")


def table(rows, cols) -> str:
    head = ["method", "dataset", "scenario", "run", "seeds"] + [leaderboard.COLUMNS[c] for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["method"], r["dataset"], r["scenario"], r["variant"],
                                        str(r["n_seeds"])] + [cell(r, c) for c in cols]) + " |")
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["ACC_HOME"] = home
        recs = RunStore(Path(home)).list_runs(include_pretrained=True)
        out = {a: leaderboard.rows(recs, a)[0] for a in ("none", "pca", "ica")}
    (REPO / "docs" / "results").mkdir(exist_ok=True)
    (REPO / "docs" / "results" / "leaderboard.json").write_text(json.dumps(out, indent=1))
    blocks = {"leaderboard, no alignment": table(out["none"], COLS),
              "leaderboard, PCA alignment": table(out["pca"], COLS[:7])}
    head = ["method", "scenario", "source"] + [leaderboard.COLUMNS[c] for c in TABLE3_COLS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, paper in TABLE3.items():
        lines.append("| " + " | ".join([method, "3dShapes (its paper)", "seed 004 Table 3"]
                                       + [f"{v:.3f}" for v in paper]) + " |")
        for r in out["none"]:
            if r["method"] == method and r["dataset"] == "shapes3d-procedural":
                lines.append("| " + " | ".join([method, r["scenario"], "measured here"]
                                               + [cell(r, c) for c in TABLE3_COLS]) + " |")
    blocks["seed 004 Table 3"] = "\n".join(lines)
    doc = REPO / "docs" / "REPRODUCTION.md"
    text = doc.read_text()
    for title, body in blocks.items():  # this script's tables only; the others stay as they are
        print(f"<!-- table: {title} -->\n{body}\n<!-- /table -->\n")
        text = re.sub(rf"<!-- table: {re.escape(title)} -->.*?<!-- /table -->",
                      lambda _: f"<!-- table: {title} -->\n{body}\n<!-- /table -->", text, flags=re.S)
    doc.write_text(text)
    print(f"wrote docs/results/leaderboard.json and the tables of {doc.relative_to(REPO)}")

if __name__ == "__main__":
    main()

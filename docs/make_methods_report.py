"""The tables of docs/REPRODUCTION.md, "Peer methods": every method on the same scenarios,
judged by the same measures, from the runs shipped in pretrained/.

    python docs/make_methods_report.py     # seconds: it reads the shipped evaluation caches

For each scenario (wall hue inactive, all three hues inactive, digit style) and each method
(ACC and the peers of `acc_core.pretrained.PEER_METHODS`), per factor: the mutual information
at the run's default noise scale (ACC: σ = √τ; codes without a loss length scale: a quarter
of their final RMS radius), the probe accuracy at that σ, and the kNN (k = 10) agreement,
of the method's default representation (LORD: content; VAEs: posterior means); LORD's class
code and ML-VAE's parts as extra rows; LORD's content-transfer MSE with its baselines.
Writes docs/results/methods.json and prints the markdown tables.

Then the claims of seeds 003 and 004 (docs/peer_claims.py): the mixing autoencoder's Table 2
ordering with its ablations, and seed 004's Table 1 invariance accuracies. Those runs are not
shipped; they are read from the run store, and trained first with

    python docs/make_methods_report.py --train   # about 10 minutes on two quiet CPU cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from acc_core import evaluate, pretrained  # noqa: E402
from acc_core.paths import pretrained_dir  # noqa: E402

SCENARIOS = pretrained.PEER_SCENARIOS


def rows_for(scenario: str) -> list[dict]:
    root = pretrained_dir()
    names = [scenario] + [f"{scenario}-{m.replace('_', '-')}" for m in pretrained.PEER_METHODS]
    out = []
    for name in names:
        d = root / name
        if not d.exists():
            continue
        cfg = evaluate._run(d)[1]
        # the mixing autoencoder's single chunks are in its chunk x factor matrix instead
        reps = ("code",) if cfg.train.method == "mixing" else cfg.method.representations
        for rep in reps:
            r = evaluate.report(d, rep=rep)
            out.append({
                "run": name, "method": cfg.train.method, "representation": rep,
                "sigma": r["sigma"], "noise_unit": r["noise_unit"]["kind"],
                "inactive": r["inactive"],
                "factors": {f: {"mi": max(v["final_mi"], 0.0), "probe": v["final_probe"],
                                "agreement": v["final_agreement"],
                                "probe_chance": v["probe_chance"],
                                "agreement_chance": v["agreement_chance"]}
                            for f, v in r["factors"].items()},
                "entropy": r["entropy"],
                "model_eval": (evaluate.model_eval(d) or {}).get("scores") if rep == cfg.method.representations[0] else None,
            })
    return out


def table(rows: list[dict], measure: str) -> str:
    factors = list(rows[0]["factors"])
    inactive = set(rows[0]["inactive"])
    head = "| run (code) | " + " | ".join(f + (" *" if f in inactive else "") for f in factors) + " |"
    lines = [head, "| --- | " + " | ".join("---:" for _ in factors) + " |"]
    for r in rows:
        vals = " | ".join(f"{r['factors'][f][measure]:.2f}" for f in factors)
        lines.append(f"| {r['run']} ({r['representation']}) | {vals} |")
    if measure != "mi":
        chance = " | ".join(f"{rows[0]['factors'][f][measure + '_chance']:.2f}" for f in factors)
        lines.append(f"| chance | {chance} |")
    else:
        ent = " | ".join(f"{rows[0]['entropy'][f]:.2f}" for f in factors)
        lines.append(f"| H(G), the most there is | {ent} |")
    return "\n".join(lines)


def main() -> None:
    import peer_claims

    results = {s: rows_for(s) for s in SCENARIOS}
    results["claims"] = peer_claims.claims(train="--train" in sys.argv[1:])
    out = REPO / "docs" / "results" / "methods.json"
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    for s, rows in results.items():
        if not rows or s == "claims":
            continue
        print(f"\n### {s}\n")
        for measure, title in (("mi", "MI (nats) at each run's default σ"),
                               ("probe", "probe accuracy at that σ"),
                               ("agreement", "kNN (k = 10) agreement")):
            print(f"{title}:\n\n{table(rows, measure)}\n")
        for r in rows:
            if r["model_eval"] and "content_transfer_mse" in r["model_eval"]:
                m = r["model_eval"]
                print(f"{r['run']}: content transfer MSE {m['content_transfer_mse']:.4f} "
                      f"(returning the content donor {m['baseline_content_donor_mse']:.4f}, "
                      f"the class donor {m['baseline_class_donor_mse']:.4f}; "
                      f"reconstruction {m['reconstruction_mse']:.4f}; {m['pairs']} pairs)\n")
    print("\n### Seed 003 Table 2 and seed 004 Table 1\n")
    print(peer_claims.markdown(results["claims"]))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()

"""The numbers and figures of docs/REPRODUCTION.md, from the runs shipped in pretrained/.

    python docs/make_reproduction.py            # everything (about 2 minutes on 2 cores)
    python docs/make_reproduction.py --no-png   # numbers only (no browser needed)

Writes docs/results/reproduction.json and, unless --no-png, docs/figures/repro_*.png
(plotly figures rendered by headless Chromium at /usr/bin/chromium through Playwright).
Every statistic is computed here from the shipped evaluation caches and snapshots; the
runs themselves come from `acc pretrained build` (see docs/REPRODUCTION.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from acc_core import evaluate, pretrained  # noqa: E402
from acc_core.analysis import mi as mi_mod  # noqa: E402
from acc_core.config import RunConfig, SetSpec  # noqa: E402
from acc_core.paths import pretrained_dir  # noqa: E402

RESULTS = REPO / "docs" / "results"
FIGURES = REPO / "docs" / "figures"
FACTORS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SCENARIOS = {  # the six Shapes3D scenarios of the ACC paper's Figure 3c
    "shapes3d-no-inactive": "no inactive factor",
    "shapes3d-wall-hue": "wall hue inactive",
    "shapes3d-wall-object-hue": "wall + object hue inactive",
    "shapes3d-all-hues": "all three hues inactive",
    "shapes3d-wall-hue-b-free": "wall hue inactive in A, B unconstrained",
    "shapes3d-hue-infonce": "hue double augmentation (InfoNCE)",
}
MNIST_TRAIN_IMAGES_WITHOUT_9 = 60_000 - 5_949  # MNIST's training split less its 5,949 nines


def shipped(name: str) -> Path | None:
    d = pretrained_dir() / name
    return d if (d / "config.json").exists() else None


def seed_runs(name: str, store=None) -> list[Path]:
    """The main run (seed 0) and every other seed of its configuration that exists: the
    shipped '<name>-seedN' copies, however many, and with `store` (a RunStore) the finished
    runs there identical to it but for the seed (e.g. `acc sweep --seeds 0-49`); one per seed."""
    main = shipped(name)
    if main is None:
        return []
    copies = [d for d in pretrained_dir().glob(f"{name}-seed*")
              if re.fullmatch(rf"{re.escape(name)}-seed\d+", d.name) and shipped(d.name)]
    runs = [main] + sorted(copies, key=lambda d: int(d.name.rsplit("seed", 1)[1]))
    if store is not None:
        def key(cfg):
            d = cfg.to_dict()
            d["train"].pop("seed")
            return json.dumps(d, sort_keys=True)

        want = key(RunConfig.from_json((main / "config.json").read_text()))
        runs += [r.dir for r in store.list_runs(status="done", include_pretrained=False)
                 if key(r.config) == want]
    by_seed: dict[int, Path] = {}
    for d in runs:  # the shipped copy of a seed first
        by_seed.setdefault(RunConfig.from_json((d / "config.json").read_text()).train.seed, d)
    return list(by_seed.values())


def _mean_sd(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": int(len(v))}


# ----- Figure 3c -------------------------------------------------------------------------------
def rms_radius(u: np.ndarray) -> float:
    x = u - u.mean(0)
    return float(np.sqrt((x * x).sum(1).mean()))


def _scale_rule(cfg: RunConfig) -> dict:
    """How the run's noise scale follows from its loss (`acc_core.losses.loss_length_scale`)."""
    t = cfg.train
    return {"rule": {"l2sq": "√τ", "l2": "τ", "cosine": "√(2τ)"}.get(t.similarity, "length scale"),
            "temperature": t.temperature}


def _measured_at(row: dict) -> str:
    """A row's own noise scale in its label, where it is not the table's σ = √τ = 1."""
    sr = row.get("scale_rule") or {"rule": "√τ", "temperature": 1.0}
    if sr["rule"] == "√τ" and sr["temperature"] == 1.0:
        return ""
    return f" (σ = {sr['rule']} = {row['sigma']:.2f} at τ = {sr['temperature']:g})"


# Recipes whose shipped runs were trained on a quiet machine: their logs' steps/s are a time
# a user can expect (the others were trained while other work shared the cores).
QUIET_LOGS = ("quick",)


def recipe_of(cfg: RunConfig) -> str:
    """The ACC recipe (`acc_core.methods.acc.RECIPES`) a Shapes3D run was trained with: the one
    that, given the run's sets, method, loss and seed, gives its exact config."""
    from acc_core.methods.acc import RECIPES

    t = cfg.train
    for name, make in RECIPES.items():
        base = make(cfg.data.source)
        if cfg.train.method != "acc":  # a baseline on ACC's recipe (e.g. hue InfoNCE)
            base = base.replace(train=dataclasses.replace(
                base.train, method=t.method, augmentations=t.augmentations,
                double_augmentation=t.double_augmentation))
        base = base.replace(set_a=cfg.set_a, set_b=cfg.set_b, model=dataclasses.replace(
            base.model, embedding_dim=cfg.model.embedding_dim), train=dataclasses.replace(
            base.train, seed=t.seed, similarity=t.similarity, temperature=t.temperature))
        if base.run_id == cfg.run_id:
            return name
    return "other"


def training_seconds(run: Path) -> float:
    """Seconds of training of a shipped run: its steps over the steps/s of its log's last record
    (whatever else ran on the machine then; benchmarks/bench_acc_recipes.py times whole runs)."""
    last = json.loads((run / "log.jsonl").read_text().strip().splitlines()[-1])
    return last["step"] / last["steps_per_s"]


def _shipped_recipe_row(runs: list[Path]) -> dict:
    mis = [evaluate.mi_at(r, 1.0, "final") for r in runs]
    steps = json.loads((runs[0] / "log.jsonl").read_text().strip().splitlines()[-1])["step"]
    return {"seeds": len(runs), "steps": steps, "shipped": True,
            "mi": {f: _mean_sd([m[k] for m in mis]) for k, f in enumerate(FACTORS)},
            "seconds": _mean_sd([training_seconds(r) for r in runs]),
            "steps_per_s": _mean_sd([steps / training_seconds(r) for r in runs]), "load_avg_1min": None}


def recipe_ablation() -> dict:
    """The ACC recipes on the all-hues scenario: whole runs timed with the load average by
    benchmarks/bench_acc_recipes.py (benchmarks/results/bench_acc_recipes.json), and, for a
    recipe it has not run, the shipped runs of that recipe (training seconds from their logs)."""
    out = {}
    path = REPO / "benchmarks" / "results" / "bench_acc_recipes.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    from acc_core.methods.acc import RECIPES
    from acc_core.pretrained import HUES

    def current(r):  # a run of a recipe since changed (e.g. an earlier `quick`) is left out
        cfg = RECIPES[r["recipe"]]("shapes3d-procedural") if r["recipe"] in RECIPES else None
        return cfg is not None and cfg.replace(
            set_a=SetSpec(inactive=HUES), set_b=SetSpec(inactive=HUES),
            train=dataclasses.replace(cfg.train, seed=r["seed"])).run_id == r["run_id"]

    runs = [r for r in runs if current(r)]
    for recipe in dict.fromkeys(r["recipe"] for r in runs):
        rs = [r for r in runs if r["recipe"] == recipe]
        out[recipe] = {"seeds": len(rs), "steps": rs[0]["steps"],
                       "mi": {f: _mean_sd([r["mi"][f] for r in rs]) for f in FACTORS},
                       "seconds": _mean_sd([r["seconds"] for r in rs]),
                       "steps_per_s": _mean_sd([r["steps_per_s"] for r in rs]),
                       "load_avg_1min": [min(min(r["load_avg_1min"]) for r in rs),
                                         max(max(r["load_avg_1min"]) for r in rs)],
                       "torch_threads": sorted({r.get("torch_threads", 1) for r in rs}),
                       "precision": sorted({r.get("precision", "float32") for r in rs})}
    main = seed_runs("shapes3d-all-hues")
    if main and "quick" not in out:
        recipe = recipe_of(RunConfig.from_json((main[0] / "config.json").read_text()))
        if recipe not in out:
            out[recipe] = _shipped_recipe_row(main)
    paper = shipped("shapes3d-all-hues-paper")
    if paper is not None and "paper" not in out:
        out["paper"] = _shipped_recipe_row([paper])
    return out


def scenario_table(store=None) -> dict:
    out = {}
    for name, title in SCENARIOS.items():
        runs = seed_runs(name, store)
        if not runs:
            continue
        reps = [evaluate.report(r) if not (r / "eval" / "report.json").exists()
                else json.loads((r / "eval" / "report.json").read_text()) for r in runs]
        for r, rep in zip(runs, reps):
            rep["rms_radius"] = {w: rms_radius(evaluate.embeddings(r, w)["u"]) for w in ("initial", "final")}
        cfg = RunConfig.from_json((runs[0] / "config.json").read_text())
        row = {"title": title, "seeds": len(reps), "inactive": reps[0]["inactive"],
               "recipe": recipe_of(cfg), "training_seconds": _mean_sd([training_seconds(r) for r in runs]),
               "sigma": reps[0]["sigma"], "scale_rule": _scale_rule(cfg), "factors": {},
               "rms_radius_untrained": _mean_sd([rep["rms_radius"]["initial"] for rep in reps]),
               "rms_radius_trained": _mean_sd([rep["rms_radius"]["final"] for rep in reps])}
        for f in FACTORS:
            row["factors"][f] = {key: _mean_sd([rep["factors"][f][key] for rep in reps])
                                 for key in ("initial_mi", "final_mi", "final_probe",
                                             "initial_agreement", "final_agreement")}
            row["factors"][f]["entropy"] = reps[0]["entropy"][f]
            row["factors"][f]["probe_chance"] = reps[0]["factors"][f]["probe_chance"]
            row["factors"][f]["agreement_chance"] = reps[0]["factors"][f]["agreement_chance"]
        out[name] = row
    return out


def fig3c(table: dict):
    import pandas as pd
    import plotly.express as px

    rows = []
    for name, row in table.items():
        for f in FACTORS:
            v = row["factors"][f]
            tag = f + (" (inactive)" if f in row["inactive"] else "")
            for key, network in (("initial_mi", "untrained"), ("final_mi", "trained")):
                rows.append({"scenario": f"{row['title']} (n={row['seeds']})", "factor": f,
                             "network": network, "MI (nats)": v[key]["mean"],
                             "sd": v[key]["sd"], "label": tag})
    fig = px.bar(pd.DataFrame(rows), x="factor", y="MI (nats)", color="network", error_y="sd",
                 barmode="group", facet_col="scenario", facet_col_wrap=3,
                 category_orders={"factor": list(FACTORS)},
                 color_discrete_map={"untrained": "#aaaaaa", "trained": "#1f77b4"})
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(title="I(U + N(0, σ²I); G) per factor at each run's length scale "
                            "(σ = √τ; InfoNCE √(2τ)), mean ± sd over seeds",
                      width=1200, height=640, margin=dict(l=40, r=10, t=70, b=40))
    return fig


# ----- noise sweeps and temperatures --------------------------------------------------------------
def temperature_table() -> dict:
    runs = {1.0: shipped("shapes3d-wall-hue"),
            **{tau: shipped(f"shapes3d-wall-hue-tau{tau:g}") for tau in pretrained.TEMPERATURES}}
    out = {}
    for tau, run in sorted(runs.items()):
        if run is None:
            continue
        sw = evaluate.noise_sweep(run, "final")
        s, m = np.asarray(sw["sigmas"]), np.asarray(sw["mi"])
        names = list(sw["factor_names"])
        ls = float(sw["length_scale"])  # √τ
        at_ls = evaluate.mi_at(run, ls, "final")
        # σ at which each factor keeps half of its small-noise information
        half = {}
        for k, n in enumerate(names):
            top = m[k, 0]
            below = np.nonzero(m[k] < 0.5 * top)[0]
            half[n] = float(s[below[0]]) if top > 0.05 and below.size else None
        out[f"{tau:g}"] = {"length_scale": ls, "mi_at_length_scale": dict(zip(names, map(float, at_ls))),
                           "sigma_half": half, "sweep": {"sigmas": s.tolist(), "mi": m.tolist(),
                                                         "factor_names": names}}
    return out


def fig_sweeps(temps: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = list(temps)
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[f"τ = {k}" for k in keys],
                        shared_yaxes=True)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for c, key in enumerate(keys, start=1):
        sw = temps[key]["sweep"]
        for k, n in enumerate(sw["factor_names"]):
            fig.add_trace(go.Scatter(x=sw["sigmas"], y=sw["mi"][k], name=n, legendgroup=n,
                                     showlegend=c == 1, line=dict(color=colours[k],
                                     dash="dash" if n == "wall_hue" else "solid")), 1, c)
        fig.add_vline(x=temps[key]["length_scale"], line=dict(color="black", width=1, dash="dot"),
                      row=1, col=c)
        fig.update_xaxes(type="log", title="σ", row=1, col=c)
    fig.update_yaxes(title="nats", row=1, col=1)
    fig.update_layout(title="Noise sweeps, wall hue inactive (dashed); dotted line: √τ",
                      width=1200, height=420, margin=dict(l=40, r=10, t=70, b=40))
    return fig


# ----- appendix C: does shape split in two? ------------------------------------------------------
def shape_split() -> dict | None:
    run = shipped("shapes3d-hues-scale")
    if run is None:
        return None
    e = evaluate.embeddings(run, "final")
    shape = e["factors"][:, FACTORS.index("shape")]
    sigma = evaluate.default_sigma(RunConfig.from_json((run / "config.json").read_text()))
    groupings = {"cube+cylinder vs sphere+capsule": (0, 0, 1, 1),
                 "cube+sphere vs cylinder+capsule": (0, 1, 0, 1),
                 "cube+capsule vs cylinder+sphere": (0, 1, 1, 0)}
    out = {"sigma": sigma, "shape_mi": float(mi_mod.gaussian_channel_mi(e["u"], shape, [sigma])[0]),
           "shape_entropy": mi_mod.entropy(shape), "pair_mi": {}}
    for label, g in groupings.items():
        grouped = np.asarray(g)[shape]
        out["pair_mi"][label] = float(mi_mod.gaussian_channel_mi(e["u"], grouped, [sigma])[0])
    # the mean embedding of each shape, and their distances: a split shows as two tight pairs
    cents = np.stack([e["u"][shape == s].mean(0) for s in range(4)])
    out["centroid_distances"] = np.linalg.norm(cents[:, None] - cents[None], axis=-1).round(3).tolist()
    return out


def fig_shape_split():
    import plotly.graph_objects as go

    run = shipped("shapes3d-hues-scale")
    e = evaluate.embeddings(run, "final")
    pc = evaluate.projection(run, "final", "pca", 2)["coords"]
    shape = e["factors"][:, FACTORS.index("shape")]
    fig = go.Figure()
    for s, (name, colour) in enumerate(zip(("cube", "cylinder", "sphere", "capsule"),
                                           ("#1f77b4", "#17becf", "#d62728", "#ff7f0e"))):
        m = shape == s
        fig.add_trace(go.Scattergl(x=pc[m, 0], y=pc[m, 1], mode="markers", name=name,
                                   marker=dict(size=5, color=colour, opacity=0.7)))
    fig.update_layout(title="Hues and scale inactive: PCA of the embedding coloured by shape "
                      "(the ACC paper, Figure 8a)", width=800, height=520,
                      margin=dict(l=40, r=10, t=70, b=40))
    return fig


# ----- Figure 4: digit style -----------------------------------------------------------------------
def style_measures(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink (mean intensity, a stroke-thickness proxy) and slant (shear of the second moments)."""
    x = images[..., 0].astype(np.float64) / 255.0  # (n, H, W)
    h, w = x.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w]
    mass = x.sum((1, 2)) + 1e-9
    cy, cx = (x * yy).sum((1, 2)) / mass, (x * xx).sum((1, 2)) / mass
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    mu11, mu02 = (x * dx * dy).sum((1, 2)) / mass, (x * dy * dy).sum((1, 2)) / mass
    return mass / (h * w), -mu11 / mu02  # slant > 0: leaning right (y grows downwards)


def _zscore_within(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    z = np.zeros_like(values)
    for c in np.unique(classes):
        m = classes == c
        z[m] = (values[m] - values[m].mean()) / (values[m].std() + 1e-12)
    return z


def digit_style() -> dict | None:
    run = shipped("digits-style")
    if run is None:
        return None
    e = evaluate.embeddings(run, "final")
    ds = evaluate.dataset(run)
    digit = e["factors"][:, 0]
    ink, slant = style_measures(ds.images(e["indices"]))
    z_ink, z_slant = _zscore_within(ink, digit), _zscore_within(slant, digit)
    u = e["u"] - e["u"][digit != 9].mean(0)
    _, _, vt = np.linalg.svd(u[digit != 9], full_matrices=False)
    pcs = u @ vt[:2].T  # (n, 2): PCA of the training digits, the 9s projected onto it

    def best_corr(z, mask):
        return max(abs(float(np.corrcoef(pcs[mask, j], z[mask])[0, 1])) for j in range(2))

    train, nines = digit != 9, digit == 9
    # retrieval across classes: each query's nearest image of every other class
    from acc_core.analysis.retrieval import knn

    matched = {"ink": [], "slant": []}
    for c in range(10):
        keys = np.nonzero(digit == c)[0]
        queries = np.nonzero(digit != c)[0]
        idx, _ = knn(e["u"][queries], e["u"][keys], 1)
        nn = keys[np.asarray(idx)[:, 0]]
        matched["ink"].append(np.stack([z_ink[queries], z_ink[nn]], 1))
        matched["slant"].append(np.stack([z_slant[queries], z_slant[nn]], 1))
    retrieval = {k: float(np.corrcoef(np.concatenate(v).T)[0, 1]) for k, v in matched.items()}
    rep = json.loads((run / "eval" / "report.json").read_text())
    return {
        "pc_corr_ink_train": best_corr(z_ink, train), "pc_corr_slant_train": best_corr(z_slant, train),
        "pc_corr_ink_nines": best_corr(z_ink, nines), "pc_corr_slant_nines": best_corr(z_slant, nines),
        "retrieval_corr_ink": retrieval["ink"], "retrieval_corr_slant": retrieval["slant"],
        "digit_probe": rep["factors"]["digit"]["final_probe"],
        "digit_probe_untrained": rep["factors"]["digit"]["initial_probe"],
        "digit_probe_chance": rep["factors"]["digit"]["probe_chance"],
        "digit_mi": rep["factors"]["digit"]["final_mi"], "digit_entropy": rep["entropy"]["digit"],
        "sigma": rep["sigma"], "n": int(len(digit)), "n_nines": int(nines.sum()),
        "_pcs": pcs, "_ink": z_ink, "_slant": z_slant, "_digit": digit,
    }


def fig_digits(style: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pcs, digit = style["_pcs"], style["_digit"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "coloured by ink (within-digit z)", "coloured by slant (within-digit z)",
        "held-out 9s (never trained on), by slant"))
    tr, nn = digit != 9, digit == 9
    for col, (z, mask) in enumerate([(style["_ink"], tr), (style["_slant"], tr),
                                     (style["_slant"], nn)], start=1):
        fig.add_trace(go.Scattergl(x=pcs[mask, 0], y=pcs[mask, 1], mode="markers",
                                   marker=dict(size=5, color=np.clip(z[mask], -2, 2),
                                               colorscale="RdBu", cmin=-2, cmax=2),
                                   showlegend=False), 1, col)
    fig.update_layout(title="Digit style: PCA of the 8-D embedding (the ACC paper, Figure 4)",
                      width=1200, height=420, margin=dict(l=40, r=10, t=70, b=40))
    return fig


# ----- appendix D, Figure 9 ----------------------------------------------------------------------
def random_loss(n_trials: int) -> dict:
    from acc_core.analysis.loss_mc import random_loss_curve

    sizes, dims = [2, 4, 8, 16, 32, 64], [1, 2, 3, 4, 5]  # the figure: one to five dimensions
    loss, taus = random_loss_curve(sizes, dims, n_trials=n_trials, temperature="optimize",
                                   return_temperature=True)
    return {"set_sizes": sizes, "dims": dims, "loss": loss.tolist(), "temperature": taus.tolist(),
            "n_trials": n_trials,
            "best_dim_per_set_size": {n: dims[int(np.argmin(loss[:, j]))] for j, n in enumerate(sizes)}}


def fig_random_loss(res: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    loss = np.asarray(res["loss"])
    for j, n in enumerate(res["set_sizes"]):
        # normalised by log n, the loss of a uniform guess, so set sizes share an axis
        fig.add_trace(go.Scatter(x=res["dims"], y=loss[:, j] / math.log(n), name=f"n = {n}",
                                 mode="lines+markers"))
    fig.update_layout(title="ACC loss of uniform random sets / log n, optimal τ per cell "
                      f"({res['n_trials']} draws)", xaxis_title="dimension d",
                      yaxis_title="loss / log n", width=800, height=420,
                      margin=dict(l=40, r=10, t=70, b=40))
    return fig


# ----- output ----------------------------------------------------------------------------------------
def save_png(figs: dict, out_dir: Path) -> None:
    """Render plotly figures to PNG in headless Chromium (the browser the app's tests use)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        for name, fig in figs.items():
            w, h = int(fig.layout.width or 1000), int(fig.layout.height or 450)
            page = browser.new_page(viewport={"width": w, "height": h})
            page.set_content(fig.to_html(include_plotlyjs=True, full_html=True,
                                         config={"staticPlot": True}))
            page.wait_for_selector(".main-svg")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out_dir / f"{name}.png"))
            page.close()
        browser.close()


def timing() -> dict | None:
    path = REPO / "benchmarks" / "results" / "bench_train.json"
    if not path.exists():
        return None
    b = json.loads(path.read_text())
    mnist = b["configs"]["mnist_paper"]
    steps_per_epoch = MNIST_TRAIN_IMAGES_WITHOUT_9 / 128  # a step embeds 2 sets of 64 images
    return {"device": b["device"], "steps_per_s": mnist["steps_per_s"],
            "steps_per_epoch": steps_per_epoch,
            "seconds_per_epoch": steps_per_epoch / mnist["steps_per_s"],
            "paper_k80_seconds_per_epoch": 47.8,
            "preset_500_steps_seconds": b.get("mnist_paper_preset_500_steps_seconds")}


def _ms(v: dict, digits: int = 2) -> str:
    return f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f}" if v["n"] > 1 else f"{v['mean']:.{digits}f}"


def markdown(out: dict) -> str:
    """The tables of docs/REPRODUCTION.md, written from the numbers above."""
    lines = []
    sc = out["scenarios"]
    if sc:
        lines += ["### MI at σ = √τ per factor (nats, mean ± sd over seeds; a row measured at "
                  "another length scale names it)", "",
                  "| scenario | recipe | s/run | seeds | " + " | ".join(FACTORS) + " |",
                  "| --- | --- | --- | --- | " + " | ".join("---" for _ in FACTORS) + " |"]
        first = next(iter(sc.values()))
        lines.append("| H(G), the most there is | | | | " + " | ".join(
            f"{first['factors'][f]['entropy']:.2f}" for f in FACTORS) + " |")
        for name, row in sc.items():
            cells = []
            for f in FACTORS:
                c = _ms(row["factors"][f]["final_mi"])
                cells.append(f"*{c}*" if f in row["inactive"] else c)
            secs = (f"{row['training_seconds']['mean']:.0f}" if row["recipe"] in QUIET_LOGS
                    else "-")
            lines.append(f"| {row['title']}{_measured_at(row)} | `{row['recipe']}` | "
                         f"{secs} | {row['seeds']} | " + " | ".join(cells) + " |")
        acc_rows = {row["recipe"]: row for row in sc.values() if "InfoNCE" not in row["title"]}
        for recipe, row in acc_rows.items():  # the untrained network: one per recipe (its gain)
            lines.append(f"| untrained network{_measured_at(row) or ', σ = √τ'} ({row['title']}) | "
                         f"`{recipe}` | | {row['seeds']} | " + " | ".join(
                _ms(row["factors"][f]["initial_mi"]) for f in FACTORS) + " |")
        lines += ["", "*italic*: inactive factor. RMS radius of the embeddings (untrained -> "
                  "trained): " + "; ".join(
                      f"{row['title']}: {row['rms_radius_untrained']['mean']:.3f} -> "
                      f"{row['rms_radius_trained']['mean']:.2f}" for row in sc.values()) + ". s/run: "
                  "seconds of training from each run's log (steps over its steps/s), the mean over "
                  "its seeds; the `quick` runs were trained one at a time on a quiet 2-core CPU "
                  "(`acc pretrained build`); the `quick-300` InfoNCE runs' logs were written while "
                  "other training shared the cores, so their time is left out (README "
                  "\"Presets\" has its quiet whole-run time)."]
        lines += ["", "### Probe accuracy at σ = √τ (mean ± sd; chance in the header)", "",
                  "| scenario | " + " | ".join(
                      f"{f} ({first['factors'][f]['probe_chance']:.2f})" for f in FACTORS) + " |",
                  "| --- | " + " | ".join("---" for _ in FACTORS) + " |"]
        for name, row in sc.items():
            lines.append(f"| {row['title']}{_measured_at(row)} | " + " | ".join(
                _ms(row["factors"][f]["final_probe"]) for f in FACTORS) + " |")
        lines += ["", "### kNN agreement (k = 10; chance in the header), untrained -> trained", "",
                  "| scenario | " + " | ".join(
                      f"{f} ({first['factors'][f]['agreement_chance']:.2f})" for f in FACTORS) + " |",
                  "| --- | " + " | ".join("---" for _ in FACTORS) + " |"]
        for name, row in sc.items():
            lines.append(f"| {row['title']} | " + " | ".join(
                f"{row['factors'][f]['initial_agreement']['mean']:.2f} -> "
                f"{row['factors'][f]['final_agreement']['mean']:.2f}" for f in FACTORS) + " |")
    if out["paper_preset"]:
        lines += ["", "### `paper` preset (one seed): MI at σ = √τ", "",
                  "| run | " + " | ".join(FACTORS) + " |",
                  "| --- | " + " | ".join("---" for _ in FACTORS) + " |"]
        for name, row in out["paper_preset"].items():
            lines.append(f"| {name} | " + " | ".join(f"{row[f]['final_mi']:.2f}" for f in FACTORS) + " |")
    ab = out.get("recipe_ablation")
    if ab:
        lines += ["", "### Quick recipe ablation: all three hues inactive, MI at σ = √τ (mean ± sd "
                  "over seeds) and seconds per run", "",
                  "| recipe | seeds | steps | " + " | ".join(FACTORS)
                  + " | s/run | steps/s | threads, precision | load average (1 min) |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in FACTORS) + " | --- | --- | --- | --- |"]
        for recipe in ("paper", *[r for r in ab if r != "paper"]):
            if recipe not in ab:
                continue
            row = ab[recipe]
            load = ("-" if row["load_avg_1min"] is None
                    else f"{row['load_avg_1min'][0]:.1f}-{row['load_avg_1min'][1]:.1f}")
            sps = "-" if row["steps_per_s"] is None else _ms(row["steps_per_s"], 1)
            src = " (shipped runs, training only)" if row.get("shipped") else ""
            how = ("-" if "precision" not in row else
                   f"{'/'.join(map(str, row['torch_threads']))}, {'/'.join(row['precision'])}")
            secs = _ms(row["seconds"], 0)
            if row.get("shipped") and recipe not in QUIET_LOGS:  # its log was written under load
                secs = sps = "-"
            lines.append(f"| `{recipe}`{src} | {row['seeds']} | {row['steps']} | " + " | ".join(
                _ms(row["mi"][f]) for f in FACTORS)
                + f" | {secs} | {sps} | {how} | {load} |")
    if out["temperatures"]:
        lines += ["", "### Temperatures (wall hue inactive)", "",
                  "| τ | √τ | wall hue MI at √τ | object hue MI at √τ | floor hue MI at √τ | "
                  "σ where object hue keeps half | σ where floor hue keeps half |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for tau, row in out["temperatures"].items():
            m, h = row["mi_at_length_scale"], row["sigma_half"]
            fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
            lines.append(f"| {tau} | {row['length_scale']:.2f} | {m['wall_hue']:.2f} | "
                         f"{m['object_hue']:.2f} | {m['floor_hue']:.2f} | "
                         f"{fmt(h['object_hue'])} | {fmt(h['floor_hue'])} |")
    ss = out.get("shape_split")
    if ss:
        lines += ["", "### Appendix C: shape information by pairing (hues and scale inactive)", "",
                  f"MI at σ = {ss['sigma']:.2f}: 4-way shape {ss['shape_mi']:.3f} nats "
                  f"(H = {ss['shape_entropy']:.2f}).", "",
                  "| two-way grouping of the shapes | MI (nats, H = 0.69) |", "| --- | --- |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in ss["pair_mi"].items()]
        names = ("cube", "cylinder", "sphere", "capsule")
        lines += ["", "Distances between the shapes' mean embeddings:", "",
                  "| | " + " | ".join(names) + " |", "| --- | " + " | ".join("---" for _ in names) + " |"]
        lines += [f"| {n} | " + " | ".join(f"{x:.2f}" for x in row) + " |"
                  for n, row in zip(names, ss["centroid_distances"])]
    ds = out.get("digit_style")
    if ds:
        lines += ["", "### Digit style (digits-style run)", "",
                  "| measure | value |", "| --- | --- |",
                  f"| best \\|corr\\| of PC1/PC2 with ink (stroke thickness), digits 0-8 | {ds['pc_corr_ink_train']:.2f} |",
                  f"| the same for slant, digits 0-8 | {ds['pc_corr_slant_train']:.2f} |",
                  f"| ink, held-out 9s projected on the same PCs | {ds['pc_corr_ink_nines']:.2f} |",
                  f"| slant, held-out 9s | {ds['pc_corr_slant_nines']:.2f} |",
                  f"| ink of query vs its nearest image of each other digit (corr.) | {ds['retrieval_corr_ink']:.2f} |",
                  f"| slant of query vs its nearest image of each other digit (corr.) | {ds['retrieval_corr_slant']:.2f} |",
                  f"| digit probe accuracy at σ = {ds['sigma']:g} (untrained; chance) | {ds['digit_probe']:.2f} "
                  f"({ds['digit_probe_untrained']:.2f}; {ds['digit_probe_chance']:.2f}) |",
                  f"| digit MI at σ = {ds['sigma']:g} (H(digit)) | {ds['digit_mi']:.2f} ({ds['digit_entropy']:.2f}) |"]
    mc = out.get("random_loss")
    if mc:
        lines += ["", f"### Appendix D: ACC loss of uniform random sets (optimal τ, {mc['n_trials']} draws)", "",
                  "| d \\ n | " + " | ".join(str(n) for n in mc["set_sizes"]) + " |",
                  "| --- | " + " | ".join("---" for _ in mc["set_sizes"]) + " |"]
        lines += [f"| {d} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
                  for d, row in zip(mc["dims"], mc["loss"])]
        lines += ["", "Dimension with the lowest loss, per set size: " + ", ".join(
            f"n = {n}: d = {d}" for n, d in mc["best_dim_per_set_size"].items()) + "."]
    tm = out.get("timing")
    if tm:
        lines += ["", "### Timing (the ABC supplement Table S2)", "",
                  "| hardware | seconds per epoch of MNIST style isolation |", "| --- | --- |",
                  f"| this machine, {tm['device']} (2 cores), {tm['steps_per_s']:.2f} steps/s x "
                  f"{tm['steps_per_epoch']:.0f} steps | {tm['seconds_per_epoch']:.1f} |",
                  f"| the paper: NVIDIA Tesla K80 (different hardware) | {tm['paper_k80_seconds_per_epoch']} |"]
    hm = out.get("histogram_mi_2d")
    if hm:
        lines += ["", "### Appendix B: histogram MI of the 2-D run (wall hue inactive)", "",
                  "| " + " | ".join(hm) + " |", "| " + " | ".join("---" for _ in hm) + " |",
                  "| " + " | ".join(f"{v:.2f}" for v in hm.values()) + " |"]
    return "\n".join(lines) + "\n"


def fill_document(tables: str, doc: Path) -> None:
    """Put each '### title' table into REPRODUCTION.md where `<!-- table: title prefix -->`
    ... `<!-- /table -->` marks it, so the document's numbers are this script's output."""
    import re

    blocks = {}
    for chunk in tables.split("\n### "):
        chunk = chunk.removeprefix("### ")
        title, _, body = chunk.partition("\n")
        blocks[title.strip()] = body.strip("\n")
    text = doc.read_text()

    def sub(m):
        prefix = m.group(1).strip()
        hits = [t for t in blocks if t.startswith(prefix)]
        if not hits:  # another script's table (the leaderboard's, the pose report's): left as it is
            return m.group(0)
        return f"<!-- table: {prefix} -->\n{blocks[hits[0]]}\n<!-- /table -->"

    doc.write_text(re.sub(r"<!-- table: (.*?) -->.*?<!-- /table -->", sub, text, flags=re.S))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--mc-trials", type=int, default=2000)
    ap.add_argument("--seeds-from-store", action="store_true",
                    help="Figure 3c: add the finished seeds in the run store (ACC_HOME) of each "
                         "scenario, e.g. from `acc sweep --seeds 0-49`, to the shipped ones")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    store = None
    if args.seeds_from_store:
        from acc_core.store import RunStore

        store = RunStore()
    table, temps = scenario_table(store), temperature_table()
    style, split = digit_style(), shape_split()
    mc = random_loss(args.mc_trials)
    two_d = shipped("shapes3d-wall-hue-2d")
    hist = None
    if two_d is not None:
        e = evaluate.embeddings(two_d, "final")
        hist = {f: mi_mod.histogram_mi(e["u"], e["factors"][:, k]) for k, f in enumerate(FACTORS)}
    out = {"scenarios": table, "temperatures": {k: {kk: vv for kk, vv in v.items() if kk != "sweep"}
                                                for k, v in temps.items()},
           "shape_split": split, "digit_style": {k: v for k, v in (style or {}).items()
                                                 if not k.startswith("_")} or None,
           "random_loss": mc, "histogram_mi_2d": hist, "timing": timing(),
           "recipe_ablation": recipe_ablation(),
           "paper_preset": {}}
    for name in ("shapes3d-wall-hue-paper", "shapes3d-all-hues-paper"):
        run = shipped(name)
        if run is not None:
            rep = evaluate.report(run)
            out["paper_preset"][name] = {f: {k: rep["factors"][f][k] for k in
                                             ("initial_mi", "final_mi", "final_probe")}
                                         for f in FACTORS}
    (RESULTS / "reproduction.json").write_text(json.dumps(out, indent=1, default=float) + "\n")
    tables = markdown(out)
    (RESULTS / "tables.md").write_text(tables)
    doc = REPO / "docs" / "REPRODUCTION.md"
    if doc.exists():
        fill_document(tables, doc)
    print(f"wrote {RESULTS / 'reproduction.json'} and {RESULTS / 'tables.md'}")
    if not args.no_png:
        figs = {"repro_fig3c": fig3c(table), "repro_random_loss": fig_random_loss(mc)}
        if temps:
            figs["repro_noise_sweeps"] = fig_sweeps(temps)
        if style:
            figs["repro_digit_style"] = fig_digits(style)
        if split:
            figs["repro_shape_split"] = fig_shape_split()
        save_png(figs, FIGURES)
        print("wrote " + ", ".join(f"docs/figures/{n}.png" for n in figs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seeds as distributions, and sweeps' progress (the ACC paper, section 4.1 and Figure 3c).

Figure 3c repeats every scenario for 50 seeds and shows, per factor, the spread of the mutual
information I(U; G) as a violin, the untrained network's in black, the inactive factors shaded.
Here the runs of one configuration are those identical but for the seed (a sweep's, or the
shipped '-seedN' copies); each violin carries its mean line, and a table gives mean ± sd.
The Home page shows each recorded sweep (`acc sweep`) as done / running / failed of N.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

import common

TRAINED, UNTRAINED = "#1f77b4", "#222222"


def seed_key(config) -> str:
    """A configuration without its seed."""
    d = config.to_dict()
    d["train"].pop("seed")
    return json.dumps(d, sort_keys=True)


def same_but_seed(rec, runs: list) -> list:
    """Finished runs whose config equals `rec`'s except for the seed (including `rec`)."""
    k = seed_key(rec.config)
    return [r for r in runs if r.status == "done" and seed_key(r.config) == k]


def seed_values(run_ids: list[str], sigma_of, rep=None) -> dict:
    """{"trained": {factor: [MI per seed]}, "untrained": {...}, "factors": [...]}; `sigma_of`
    maps a run id to its noise scale."""
    root = common.root()
    names = list(common.run_dataset(common.get_run(run_ids[0])).factor_names)
    out = {"factors": names, "trained": {n: [] for n in names}, "untrained": {n: [] for n in names}}
    for rid in run_ids:
        s = sigma_of(rid)
        for which, step in (("trained", "final"), ("untrained", "initial")):
            for n, v in zip(names, common.mi_at(root, rid, s, step, rep=rep)):
                out[which][n].append(float(v))
    return out


def seed_violins(groups: list[dict], *, title: str, height_per_group: int = 300):
    """One panel per configuration: per factor, a violin of the trained runs' MI over seeds
    (mean line, every seed a dot) beside the untrained network's; inactive factors shaded.
    `groups`: [{"title", "inactive", "factors", "trained", "untrained"}] (seed_values)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    height = 90 + height_per_group * len(groups)
    fig = make_subplots(rows=len(groups), cols=1, subplot_titles=[g["title"] for g in groups],
                        vertical_spacing=min(0.3, 80 / height))  # room for ticks and a title
    for i, g in enumerate(groups, start=1):
        for which, colour in (("untrained", UNTRAINED), ("trained", TRAINED)):
            xs = [f for f in g["factors"] for _ in g[which][f]]
            ys = [v for f in g["factors"] for v in g[which][f]]
            fig.add_trace(go.Violin(
                x=xs, y=ys, name=f"{which} network", legendgroup=which, showlegend=i == 1,
                line_color=colour, meanline_visible=True, points="all", pointpos=0,
                jitter=0.3, marker=dict(size=4), scalemode="width", offsetgroup=which,
                hovertemplate="%{x}: %{y:.3f} nats<extra>" + which + "</extra>"), row=i, col=1)
        for k, f in enumerate(g["factors"]):
            if f in g["inactive"]:
                fig.add_vrect(x0=k - 0.5, x1=k + 0.5, fillcolor="#999", opacity=0.18,
                              line_width=0, row=i, col=1)
        fig.update_yaxes(title_text="nats", row=i, col=1)
    fig.update_layout(title=title, violinmode="group", height=height,
                      margin=dict(l=50, r=10, t=60, b=10), legend=dict(orientation="h", y=1.06))
    return fig


def spread_table(groups: list[dict]):
    """Mean ± sd over seeds (trained network), a row per configuration, a column per factor."""
    import pandas as pd

    rows = []
    for g in groups:
        row = {"configuration": g["title"].replace("<br>", " | "),
               "seeds": len(next(iter(g["trained"].values()), []))}
        for f in g["factors"]:
            v = np.asarray(g["trained"][f], dtype=float)
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            row[f + (" ✕" if f in g["inactive"] else "")] = f"{v.mean():.3f} ± {sd:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def show_seed_spread(groups: list[dict], *, title: str, key: str) -> None:
    st.plotly_chart(seed_violins(groups, title=title), key=key)
    st.dataframe(spread_table(groups), hide_index=True, width="stretch")
    st.caption("Runs identical but for the seed; each dot is one seed, the line in a violin "
               "its mean; ± is the standard deviation over seeds. Grey bands and ✕: factors "
               "inactive in that configuration. Black: the same networks untrained.")


# ----- Compare: several configurations -------------------------------------------------------------
@st.fragment
@common.guard
def compare_seeds_section(run_ids: list[str], runs: list) -> None:
    """The chosen runs' configurations, each with all its finished seeds, as Figure 3c."""
    st.subheader("Across seeds")
    mult = float(st.session_state.get("c_sigma", 1.0))
    root = common.root()
    groups, seen = [], set()
    for rid in run_ids:
        rec = common.get_run(rid)
        key = seed_key(rec.config)
        if key in seen:
            continue
        seen.add(key)
        seeds = [r.run_id for r in same_but_seed(rec, runs)]
        vals = seed_values(seeds, lambda i: mult * common.default_sigma(root, i))
        groups.append({"title": f"{compare_label(rec)} · {len(seeds)} seed(s)",
                       "inactive": common.inactive_factors(rec.config), **vals})
    if all(len(next(iter(g["trained"].values()))) < 2 for g in groups):
        st.caption("Each chosen configuration has one finished seed. Train more with "
                   "`acc sweep --seeds 0-9 ...` (or the Train page) to see the spread.")
    show_seed_spread(groups, title=f"I(U + noise; G) over seeds at {mult:g} x each run's own "
                                   "noise scale", key="c_seed_violins")


def compare_label(rec) -> str:
    return f"{rec.config.train.method}: {common.scenario_text(rec.config)}"


# ----- Home: sweeps -------------------------------------------------------------------------------
def sweeps_section(limit: int = 5) -> None:
    """Each recorded sweep's progress, most recent first (nothing when there is none)."""
    from acc_core import sweep

    recs = sweep.list_sweeps(common.root())
    if not recs:
        return
    st.subheader("Sweeps")
    store = common.store()
    for rec in recs[:limit]:
        c = sweep.counts(store, rec["runs"])
        text = (f"**{rec['name']}**: {c['done']} done · {c['running']} running · "
                f"{c['failed']} failed of {c['total']} runs")
        st.progress(min((c["done"] + c["fraction"]) / max(c["total"], 1), 1.0), text=text)
    if len(recs) > limit:
        st.caption(f"{len(recs) - limit} older sweeps are in `{common.root()}/sweeps/`.")
    st.caption("`acc sweep` trains grids of runs (seeds, scenarios, methods); a rerun of the "
               "same command resumes a sweep. The Information and Compare pages show their "
               "seeds as distributions.")

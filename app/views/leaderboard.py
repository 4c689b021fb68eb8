"""Leaderboard: every method on every scenario, ranked by the field's standard disentanglement
scores and by this project's own measures, mean and spread over seeds (`acc leaderboard`).

Scores are read from each run's cache (the worker computes them when a run finishes; shipped runs
carry them), so the page opens without computing; runs without them can be scored here.
"""

from __future__ import annotations

import streamlit as st

import common

from acc_core import leaderboard
from acc_core.analysis.metrics import ALIGNMENTS, ROTATION_FREE, SCORES

ALIGN_TITLES = {"none": "none (the code as it is)", "pca": "PCA axes", "ica": "ICA components"}


@st.cache_data(show_spinner=False, max_entries=16)
def _rows(root: str, run_ids: tuple[str, ...], align: str, version: float):
    recs = [r for r in common.store().list_runs(include_pretrained=True) if r.run_id in run_ids]
    return leaderboard.rows(recs, align)


def page() -> None:
    st.title("Leaderboard")
    st.markdown(
        "MIG, SAP, DCI disentanglement and completeness, modularity, the FactorVAE score and IRS "
        "assume **one factor per code axis**; ACC and LORD codes are defined only up to a "
        "rotation (their losses see distances), so they score low on those by construction. "
        "Read them beside the scores that ignore rotation (explicitness, and this project's "
        "noise-swept mutual information, probes and neighbour agreement), or rotate each code "
        "first with a named alignment below.")
    runs = [r for r in common.list_runs() if r.status == "done"]
    if not runs:
        st.info("No finished runs yet: train one on the Train page.")
        return
    c1, c2, c3, c4 = st.columns([1.2, 1.6, 1.2, 1.2])
    datasets = sorted({r.config.data.source for r in runs})
    pick_d = c1.multiselect("Dataset", datasets, default=datasets, key="lb_dataset")
    scen = sorted({leaderboard.scenario_label(r.config) for r in runs
                   if r.config.data.source in pick_d})
    pick_s = c2.multiselect("Scenario", scen, default=scen, key="lb_scenario")
    meths = sorted({r.config.train.method for r in runs})
    pick_m = c3.multiselect("Method", meths, default=meths, key="lb_method")
    align = c4.radio("Alignment before the axis-aligned scores", ALIGNMENTS,
                     format_func=ALIGN_TITLES.get, key="lb_align")
    chosen = tuple(r.run_id for r in runs if r.config.data.source in pick_d
                   and leaderboard.scenario_label(r.config) in pick_s
                   and r.config.train.method in pick_m)
    version = max((r.updated_at for r in runs), default=0.0)
    rows, skipped = _rows(common.root(), chosen, align, version)
    if skipped:
        st.warning(f"{len(skipped)} finished run(s) have no cached scores yet and are left out.")
        if st.button(f"Score them now ({len(skipped)} run(s), a few seconds each)", key="lb_score"):
            bar = st.progress(0.0, text="scoring")
            todo = [r for r in runs if r.run_id in chosen]
            leaderboard.rows(todo, align, compute=True,
                             progress=lambda i, n, label: bar.progress(i / max(n, 1), text=label))
            _rows.clear()
            st.rerun()
    if not rows:
        st.info("No run matches these filters.")
        return
    spread = st.toggle("Show the spread over seeds (std)", key="lb_spread")
    df = leaderboard.frame(rows)
    df["open"] = "compare?runs=" + df["runs"]
    score_cols = list(leaderboard.COLUMNS)
    cols = ["method", "dataset", "scenario", "variant", "n_seeds"]
    for c in score_cols:
        cols.append(c)
        if spread:
            cols.append(f"{c}_std")
    cols.append("open")
    config = {
        "n_seeds": st.column_config.NumberColumn("seeds", help="runs (seeds) in the row"),
        "open": st.column_config.LinkColumn("runs", display_text="compare these runs",
                                            help="the row's runs side by side on Compare"),
    }
    for c, title in leaderboard.COLUMNS.items():
        axis = c in SCORES and c not in ROTATION_FREE
        suffix = f" ({align})" if axis and align != "none" else ""
        config[c] = st.column_config.NumberColumn(
            title + suffix, format="%.3f",
            help=("assumes one factor per axis" if axis else "ignores rotation")
            + (f"; after {ALIGN_TITLES[align]}" if axis and align != "none" else ""))
        config[f"{c}_std"] = st.column_config.NumberColumn(f"± {title}", format="%.3f")
    st.dataframe(df[cols], hide_index=True, width="stretch", column_config=config,
                 key="lb_table")
    labels = [f"{r['method']} · {r['dataset']} · {r['scenario']} · {r['variant']} "
              f"({r['n_seeds']} seed{'s' if r['n_seeds'] > 1 else ''})" for r in rows]
    left, right = st.columns([3, 1])
    pick = left.selectbox("A row's runs", range(len(rows)), format_func=labels.__getitem__,
                          key="lb_row")
    right.link_button("Open them on Compare", f"compare?runs={','.join(rows[pick]['runs'])}",
                      icon=":material/compare:")
    st.download_button("Download CSV", df.drop(columns=["open"]).to_csv(index=False),
                       file_name=f"acc-leaderboard-{align}.csv", mime="text/csv",
                       key="lb_csv")
    n_probe = sorted({r["n_probe"] for r in rows if r.get("n_probe")})
    st.caption(
        "Click a column header to sort. Standard scores: disentanglement_lib's recipes and "
        "defaults (20-bin discretisation, its classifiers), except two named departures: each "
        f"run is scored on its final probe ({', '.join(map(str, n_probe))} images, split 2:1) "
        "instead of 10,000 + 5,000 fresh points, so that shipped runs without weights are scored "
        "like the rest; and DCI uses its fast mode (extremely randomised trees), not the "
        "reference's gradient-boosted trees. MI active / inactive: noise-swept mutual "
        "information at the run's own noise scale, averaged over the scenario's active / "
        "inactive factors. A dash: not defined (one factor, or no inactive factor).")


common.run_page(page)

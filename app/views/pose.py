"""Pose transfer: real-domain queries and their nearest synthetic neighbours (the ACC paper
section 4.3, Figure 5 and Tables 1-2).

For an `acc_pose` run, pick a real-domain query (a held-out object instance) and see the four
nearest of the 1,800 synthetic dictionary images in the trained embedding beside those of the
untrained network, each with its viewpoint; the table and histogram give the errors of
every query. Everything shown was computed when the run ended (`acc_core.methods.acc_pose_eval`).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import figure_export

TABLES = {"lookup": "ACC embedding, nearest neighbour", "untrained": "untrained network, nearest neighbour",
          "regression": "spherical-regression head"}


def _pose_caption(ds, idx: int, err: float | None = None) -> str:
    az, el = np.degrees(ds.poses([idx])[0])
    text = f"az {az:.0f}°, el {el:.0f}°"
    return text if err is None else f"{text} ({err:.0f}° off)"


def page() -> None:
    st.title("Pose transfer")
    st.caption("Set A holds synthetic views of one object, set B is unconstrained with a few "
               "unlabelled 'real' images; no pose label reaches the ACC loss. A real-domain "
               "image of an object never trained on takes the pose of its nearest synthetic "
               "neighbour (the ACC paper, section 4.3, Figure 5 and Table 1).")
    runs = [r for r in common.list_runs(status="done") if r.config.train.method == "acc_pose"]
    if not runs:
        st.info("No finished pose run yet. Train one with `acc train --data pose-procedural "
                "--method acc_pose` (or `python docs/make_pose_report.py --train` for the "
                "report's four runs), then come back.")
        return
    rec = common.pick_run(runs, key="pose_run")
    ev = common.model_eval(common.root(), rec.run_id, rec.step)
    if not ev or "lookup" not in ev["scores"]:
        st.info("This run has no pose evaluation yet (it is written when training ends).")
        return
    scores, arrays = ev["scores"], ev["images"]
    cats = list(rec.config.params.categories)
    cat = st.radio("Category", cats, horizontal=True, key="pose_cat")

    rows = [{"pose from": TABLES[t], "median error (°)": round(s[cat]["median_error"], 1),
             "acc@30°": round(s[cat]["acc30"], 2),
             "flip-invariant median (°)": round(s[cat]["flip_median_error"], 1),
             "flip-invariant acc@30°": round(s[cat]["flip_acc30"], 2), "queries": s[cat]["n"]}
            for t, s in scores.items() if t in TABLES and cat in s]
    st.dataframe(rows, hide_index=True, width="stretch")

    ds = common.dataset("pose-procedural", rec.config.data.image_size)
    size = rec.config.data.image_size
    query, dictionary = arrays[f"{cat}_query"], arrays[f"{cat}_dictionary"]
    i = st.slider("Query", 0, len(query) - 1, 0, key="pose_query",
                  help="One of the real-domain images of the held-out objects.")
    q = int(query[i])
    c = st.columns([1, 4, 4])
    with c[0]:
        st.markdown("**Query (real)**")
        common.show_images("pose-procedural", size, [q], [_pose_caption(ds, q)], size=96, width=96)
    for col, key, title in ((c[1], "nn", "ACC"), (c[2], "nn_untrained", "untrained network")):
        nn = dictionary[arrays[f"{cat}_{key}"][i]]
        true = ds.poses([q])
        from acc_core.analysis.pose import angular_error

        errs = angular_error(ds.poses(nn), np.repeat(true, len(nn), 0))
        with col:
            st.markdown(f"**{title}: nearest synthetic images**")
            common.show_images("pose-procedural", size, nn,
                               [_pose_caption(ds, int(j), e) for j, e in zip(nn, errs)],
                               size=96, width=96)

    import plotly.graph_objects as go

    fig = go.Figure()
    for key, name in (("err", "ACC"), ("err_untrained", "untrained"), ("err_regression", "regression head")):
        if f"{cat}_{key}" in arrays:
            fig.add_trace(go.Histogram(x=arrays[f"{cat}_{key}"], name=name, opacity=0.6,
                                       xbins=dict(start=0, end=180, size=10)))
    fig.update_layout(barmode="overlay", xaxis_title="angular error (°)", yaxis_title="queries",
                      height=320, margin=dict(t=30, b=40))
    st.subheader("Errors of every query")
    figure_export.chart(fig, key=f"pose_hist_{rec.run_id}_{cat}", name=f"pose_errors_{cat}")


common.run_page(page)

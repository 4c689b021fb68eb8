"""The live view of a run: status, progress, loss curve, steps/s, ETA and the PCA of its
latest embedding snapshot (the ACC paper, Figure 1: t = 0, then t -> infinity).

Used by the Train page. A queued or running run is drawn in a fragment that reruns every two
seconds, so progress shows without reloading and survives a refresh (it is all read back
from the run store); a finished run is drawn once.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import figure_export
import figures

ss = st.session_state


def run_panel(run_id: str):
    """Status, progress, loss curve and the latest PCA of one run; returns the record shown."""
    rec = common.get_run(run_id)
    if rec is None:
        st.warning("This run is no longer in the store.")
        return None
    s = common.store()
    st.markdown(f"**{common.STATUS_ICONS.get(rec.status, '')} {rec.status}** · "
                f"{rec.label or rec.config.describe()} · `{rec.run_id}`")
    st.progress(min(rec.step / max(rec.steps, 1), 1.0), text=f"step {rec.step} / {rec.steps}")
    log = s.read_log(rec.run_id)
    log = [r for r in log if "loss" in r and r.get("event") != "failed"]
    last = log[-1] if log else {}
    m = st.columns(4)
    m[0].metric("loss", f"{last['loss']:.3f}" if last else "–")
    m[1].metric("steps / s", f"{last.get('steps_per_s', 0):.2f}" if last else "–")
    eta = last.get("eta_s") if rec.status == "running" else None
    m[2].metric("ETA", common.fmt_seconds(eta) if rec.status == "running" else "–")
    m[3].metric("updated", common.ago(rec.updated_at))
    if rec.status == "failed":
        st.error(f"This run failed: {rec.reason or 'no reason recorded'}")
    elif rec.status == "interrupted":
        st.warning(f"Interrupted ({rec.reason or 'worker stopped'}); a worker resumes it "
                   "from its last checkpoint.")
    elif rec.status == "cancelled":
        st.info("Cancelled. Retry (or launch the same settings again) to resume it from its "
                "last checkpoint.")
    elif rec.status == "done":
        st.success("Done. Explore it on the other pages.")
        c = st.columns(3)
        c[0].page_link("views/embeddings.py", label="Embeddings", icon=":material/scatter_plot:")
        c[1].page_link("views/information.py", label="Information", icon=":material/bar_chart:")
        c[2].page_link("views/retrieval.py", label="Retrieval", icon=":material/image_search:")
    if rec.status in ("queued", "running"):
        if st.button("Cancel this run", key=f"cancel_{rec.run_id}"):
            s.request_cancel(rec.run_id)
            st.rerun()
    if rec.status in ("failed", "cancelled") and st.button("Retry", key=f"retry_{rec.run_id}"):
        from acc_core.worker import ensure_worker

        s.submit(rec.config, retry=True)
        ensure_worker(common.root())
        st.rerun()

    left, right = st.columns(2)
    with left:
        if log:
            steps = np.array([r["step"] for r in log])
            loss = np.array([r["loss"] for r in log], dtype=float)
            fig = figures.loss_curve(steps, loss)
            figure_export.chart(fig, key=f"loss_{rec.run_id}", name=f"loss-{rec.run_id}")
        else:
            st.caption("The loss curve appears with the first training step.")
    with right:
        latest_snapshot(rec)
    return rec


def latest_snapshot(rec) -> None:
    steps = common.snapshot_steps(common.root(), rec.run_id, rec.step)
    if not steps:
        st.caption("The embedding's PCA appears with the first snapshot.")
        return
    ds = common.run_dataset(rec)
    inactive = common.inactive_factors(rec.config)
    active = [n for n in ds.factor_names if n not in inactive] or list(ds.factor_names)
    name = st.selectbox("Colour by", ds.factor_names, index=ds.factor_names.index(active[0]),
                        key=f"t_colour_{rec.run_id}",
                        format_func=lambda n: f"{n} (inactive)" if n in inactive else n)
    p = common.projection(common.root(), rec.run_id, steps[-1], "pca")
    fig = figures.scatter_by_factor(p["coords"], p["factors"], ds, ds.factor_names.index(name),
                                   title=f"PCA of the embeddings at step {steps[-1]}", height=320)
    fig.update_layout(dragmode="zoom")
    figure_export.chart(fig, key=f"pca_{rec.run_id}", name=f"pca-{rec.run_id}")


@st.fragment(run_every=2.0)
@common.guard
def live_panel(run_id: str) -> None:
    rec = common.get_run(run_id)
    if rec is not None and rec.status in ("queued", "interrupted"):
        from acc_core.worker import ensure_worker

        ensure_worker(common.root())  # a worker that idled out or died is started again
    shown = run_panel(run_id)
    if shown is not None and shown.status not in common.LIVE:
        st.rerun()  # finished: redraw the page once, without the timer


def watch() -> None:
    st.subheader("Your runs")
    runs = [r for r in common.list_runs() if r.source == "user"]
    if not runs:
        st.caption("Runs you launch appear here with live progress.")
        return
    # Default: the run launched from this tab, else a running one, else queued, else newest.
    live = sorted((r for r in runs if r.status in common.LIVE),
                  key=lambda r: common.LIVE.index(r.status) if r.status != "running" else -1)
    ids = [r.run_id for r in runs]
    by_id = {r.run_id: r for r in runs}
    if ss.get("t_watch_box") not in ids:
        last = ss.get("t_watch")
        ss["t_watch_box"] = last if last in ids else (live or runs)[0].run_id
    run_id = st.selectbox("Watch run", ids, key="t_watch_box",
                          format_func=lambda i: common.run_label(by_id[i], status=False))
    ss["t_watch"] = run_id
    if by_id[run_id].status in common.LIVE:
        live_panel(run_id)
    else:
        run_panel(run_id)

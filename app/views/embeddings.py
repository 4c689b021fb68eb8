"""Embeddings: PCA or UMAP of a run's embeddings, one small multiple per generative factor.

The ACC paper, Figure 1 (right) and section 4.1: after training the embedding should be organised
by the active factors and mixed with respect to the inactive ones; the untrained network
(step 0) is shown beside it for contrast. Selecting points with the box or lasso shows their
images. The embeddings are those of the run's fixed probe subset, saved as snapshots.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import export_ui
import figure_export
import figures
import peer_views
import whole_dataset

ss = st.session_state


@st.cache_resource(show_spinner=False, max_entries=32)
def grid_figure(root: str, run_id: str, step, method: str, rep: str | None = None):
    """Small multiples: a row at `step` and a row for the untrained network, one panel per
    factor. Cached as the figure object: building 12 plotly panels costs about half a second."""
    rec = common.record(root, run_id)
    trained = common.projection(root, run_id, step, method, rep)
    untrained = common.projection(root, run_id, "initial", method, rep)
    rows = [(f"step {trained['step']}", trained["coords"]),
            (f"untrained (step {untrained['step']})", untrained["coords"])]
    return figures.small_multiples(rows, trained["factors"], common.run_dataset(rec),
                                  common.inactive_factors(rec.config))


def page() -> None:
    st.title("Embeddings")
    st.caption("Each dot is one image of a fixed probe subset, placed by a 2-D projection of "
               "its embedding. One panel per generative factor, coloured by that factor's "
               "value: a factor the network isolated shows as clean colour regions, a factor it "
               "dropped looks like confetti.")
    runs = [r for r in common.list_runs() if r.status in ("done", "running", "interrupted",
                                                           "cancelled")]
    rec = common.pick_run(runs, key="e_run")
    if rec is None:
        return
    root = common.root()
    rep = common.pick_representation(rec, key="e_rep")
    if whole_dataset.chosen(key="e_view"):  # a large sample instead of the probe subset
        whole_dataset.view(rec, rep)
        return
    steps = common.snapshot_steps(root, rec.run_id, rec.step)
    if not steps:
        st.info("This run has no embedding snapshots yet; they appear as it trains.")
        return
    c = st.columns([1, 3])
    method = c[0].segmented_control("Projection", ["pca", "umap"], key="e_method", required=True,
                                    default="pca", format_func=str.upper,
                                    help="PCA is linear and instant. UMAP keeps neighbourhoods; "
                                         "the first one after a server start takes about half "
                                         "a minute (numba compiles it), later ones a few "
                                         "seconds, and each result is cached.")
    step = steps[-1]
    if len(steps) > 1:
        step = c[1].select_slider("Training step (watch the embedding form)", steps,
                                  value=steps[-1], key=f"e_step_{rec.run_id}")
    inactive = common.inactive_factors(rec.config)
    trained = common.projection(root, rec.run_id, step, method, rep)
    figure_export.chart(grid_figure(root, rec.run_id, step, method, rep), key="e_grid",
                        config={"displayModeBar": False}, name=f"embeddings-{method}-step{step}")
    notes = []
    if "explained_variance" in trained:
        ev = np.asarray(trained["explained_variance"], dtype=float)
        notes.append(f"the two PCA axes explain {common.share_text(ev.sum())} of the variance at step "
                     f"{trained['step']}")
    notes.append(f"(inactive) = held fixed within a set: {', '.join(inactive) or 'none'}")
    notes.append(f"{len(trained['coords'])} probe images, at most "
                 f"{figures.GRID_POINTS} drawn per panel")
    st.caption("; ".join(notes) + ".")

    look_closer(rec.run_id, step, method, rep)
    export_ui.downloads(rec, step, rep, key=f"{rec.run_id}_{step}_{rep}")
    method_views(rec)


def method_views(rec) -> None:
    """What a method shows of its networks, computed when its training ended (so shipped runs
    without weights show it too): LORD's content transfer, the VAEs' latent traversals."""
    ev = common.model_eval(common.root(), rec.run_id, rec.step)
    if not ev:
        return
    images, scores = ev["images"], ev["scores"]
    if "transfer_grid" in images:
        st.subheader("Content transfer")
        st.caption("Row: the class donor (its class code); column: the content donor (its "
                   "content code); each cell is the generator's image from the two codes. "
                   "A good split keeps the row's class and the column's content. "
                   "(Reconstruction loss: multi-scale pixel L1 instead of the paper's VGG "
                   "perceptual loss, which needs weights that cannot be downloaded here.)")
        st.image(figures_mosaic(images["transfer_grid"]), width=min(720, 90 * images["transfer_grid"].shape[1]))
        if scores:
            flat = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
            if flat:
                st.caption("; ".join(f"{k.replace('_', ' ')}: {v:.4g}" for k, v in flat.items()))
    if "traversal" in images:
        st.subheader("Latent traversals")
        st.caption("Row: one latent dimension moved from -2 to +2 around one probe image's "
                   "posterior mean, the others held; a dimension that changes one factor "
                   "alone is disentangled.")
        st.image(figures_mosaic(images["traversal"]), width=min(720, 90 * images["traversal"].shape[1]))
    peer_views.show(ev, figures_mosaic, rec.config.train.method)  # mixing, rci


def figures_mosaic(grid: np.ndarray) -> np.ndarray:
    """(R, C, H, W, ch) uint8 -> one (R*(H+2), C*(W+2), 3) image with white gutters."""
    g = np.asarray(grid)
    if g.ndim == 4:  # (R, C, H, W): one channel
        g = g[..., None]
    if g.shape[-1] == 1:
        g = np.repeat(g, 3, axis=-1)
    R, C, H, W, _ = g.shape
    out = np.full((R, C, H + 2, W + 2, 3), 255, np.uint8)
    out[:, :, 1:-1, 1:-1] = g
    return out.transpose(0, 2, 1, 3, 4).reshape(R * (H + 2), C * (W + 2), 3)


@st.fragment
@common.guard
def look_closer(run_id: str, step, method: str, rep: str | None = None) -> None:
    """One projection coloured by a chosen factor; a box/lasso selection shows the images.

    A fragment: changing the colour or the selection reruns only this part of the page.
    """
    rec = common.get_run(run_id)
    ds = common.run_dataset(rec)
    inactive = common.inactive_factors(rec.config)
    trained = common.projection(common.root(), run_id, step, method, rep)
    st.subheader("Look closer")
    st.caption("Drag a box (or pick the lasso in the chart's toolbar) around points to see "
               "their images.")
    c = st.columns([1, 3])
    inactive_note = {n: f"{n} (inactive)" for n in inactive}
    from acc_core.analysis.style import MEASURES

    # Digits: the style the embedding should fan out by, measured on each image (section 4.2)
    derived = [f"{m} (derived)" for m in MEASURES] if "digit" in ds.factor_names else []
    name = c[0].selectbox("Colour by", list(ds.factor_names) + derived, key="e_colour",
                          format_func=lambda n: inactive_note.get(n, n))
    title = f"{method.upper()} at step {trained['step']}, coloured by {name}"
    if name in derived:
        measure = name.removesuffix(" (derived)")
        values = common.style_measure(common.root(), run_id, measure)
        fig = figures.scatter_continuous(trained["coords"], values, measure, title=title)
        st.caption("Derived colourings are measured on each image (ink area over stroke "
                   "length; the shear of the ink's moments), not generative factors.")
    else:
        k = ds.factor_names.index(name)
        fig = figures.scatter_by_factor(trained["coords"], trained["factors"], ds, k, title=title)
    event = figure_export.chart(fig, key=f"e_select_{run_id}_{step}_{method}_{rep}",
                                on_select="rerun", selection_mode=("box", "lasso"))
    positions = selected_positions(event)
    with c[0]:
        st.metric("selected", len(positions))
    if positions:
        shown = positions[:48]
        idx = trained["indices"][shown]
        f = trained["factors"][shown]
        active = [j for j, n in enumerate(ds.factor_names) if n not in inactive]
        captions = [", ".join(f"{ds.factor_names[j]} {common.value_label(ds, j, f[i, j])}"
                              for j in active) or str(idx[i]) for i in range(len(shown))]
        st.caption(f"{len(shown)} of {len(positions)} selected images; captions give the "
                   "active factors' values.")
        common.show_images(rec.config.data.source, rec.config.data.image_size, idx, captions,
                           split=common.run_split(common.root(), rec.run_id, rec.step))


def selected_positions(event) -> list[int]:
    """Positions (into the probe subset) of the points selected in trace 0."""
    try:
        points = event.selection.points
    except AttributeError:
        return []
    return sorted({int(p["point_index"]) for p in points if p.get("curve_number", 0) == 0})


common.run_page(page)

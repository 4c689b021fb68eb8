"""Retrieval: nearest neighbours in a run's embedding, and what they have in common.

The ACC paper, section 4.2 and Figure 4 (right): with digit identity inactive, a query's nearest
image of every other class shares its *style*. For any run, the neighbours of a query show
which factors the embedding kept: they agree with the query on the isolated factors and
look random in the dropped ones; per-factor agreement against chance sums this up.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import figure_export
import figures

ss = st.session_state


def neighbour_caption(factor_names, same) -> str:
    """A neighbour's caption: which of the query's factor values it shares, by name."""
    shared = [n.replace("_", " ") for n, s in zip(factor_names, same) if s]
    return "same " + ", ".join(shared) if shared else "shares no factor value"


def choose_query(emb: dict, ds, run_id: str) -> int:
    """A position in the probe subset, chosen at random, by factor values or by position."""
    n = len(emb["indices"])
    how = st.segmented_control("Query image", ["random", "by factor values", "by position"],
                               key="r_how", required=True, default="random")
    key = f"r_query_{run_id}"
    if key not in ss:
        ss[key] = int(np.random.default_rng(0).integers(n))
    if how == "random":
        if st.button("Another random image", key="r_random", icon=":material/casino:"):
            ss[key] = int(np.random.default_rng().integers(n))
    elif how == "by factor values":
        cols = st.columns(len(ds.factor_names))
        wanted = [cols[k].selectbox(name, range(ds.factor_sizes[k]), key=f"r_val_{name}",
                                    format_func=lambda v, k=k: common.value_label(ds, k, v))
                  for k, name in enumerate(ds.factor_names)]
        # The probe subset holds a sample of the dataset: take the closest match.
        mismatches = (emb["factors"] != np.asarray(wanted)[None, :]).sum(axis=1)
        ss[key] = int(np.argmin(mismatches))
        if mismatches[ss[key]]:
            st.caption(f"No probe image has exactly these values; the closest differs in "
                       f"{int(mismatches[ss[key]])} factor(s).")
    else:
        ss[key] = int(st.number_input(f"Position in the probe subset (0-{n - 1})", 0, n - 1,
                                      value=int(ss[key]), key="r_position"))
    return ss[key]


def class_grid_image(rec, ds, emb: dict, rep=None) -> None:
    root = common.root()
    grid = common.class_grid(root, rec.run_id, rep)  # (C, C) probe positions
    C = grid.shape[0]
    idx = emb["indices"][grid.reshape(-1)]
    ims = common.images(rec.config.data.source, rec.config.data.image_size,
                        tuple(int(i) for i in idx), 56,
                        common.run_split(common.root(), rec.run_id, rec.step))
    tiles = ims.reshape(C, C, *ims.shape[1:])
    pad = np.full((C, C, 60, 60, 3), 255, np.uint8)
    pad[:, :, 2:58, 2:58] = tiles
    pad[np.arange(C), np.arange(C), :2] = pad[np.arange(C), np.arange(C), -2:] = (214, 39, 40)
    pad[np.arange(C), np.arange(C), :, :2] = pad[np.arange(C), np.arange(C), :, -2:] = (214, 39, 40)
    mosaic = pad.transpose(0, 2, 1, 3, 4).reshape(C * 60, C * 60, 3)
    st.image(mosaic, caption=f"Row i: the first probe image of class i (red frame, on the "
                             "diagonal; for MNIST a held-out test image) and its "
                             f"nearest neighbour of every other class (columns 0..{C - 1}). "
                             "Similar style along a row = style isolated from identity.",
             width=C * 60)


def page() -> None:
    st.title("Retrieval")
    st.caption("Pick a query image and look at its nearest neighbours in the embedding. A "
               "factor the embedding kept is shared by the neighbours; a factor it dropped "
               "varies among them as if at random.")
    runs = common.list_runs("done")
    rec = common.pick_run(runs, key="r_run")
    if rec is None:
        return
    root = common.root()
    ds = common.run_dataset(rec)
    rep = common.pick_representation(rec, key="r_rep")
    emb = common.embeddings(root, rec.run_id, "final", rep)
    inactive = common.inactive_factors(rec.config)
    pos = choose_query(emb, ds, rec.run_id)
    k = st.slider("Neighbours", 4, 32, 12, key="r_k")
    nn = common.knn(root, rec.run_id, pos, k, rep)
    src, size = rec.config.data.source, rec.config.data.image_size
    split = common.run_split(root, rec.run_id, rec.step)
    q_f = emb["factors"][pos]
    left, right = st.columns([1, 4])
    with left:
        st.markdown("**Query**")
        common.show_images(src, size, [emb["indices"][pos]], size=128, width=128, split=split)
        st.caption("  \n".join(f"{n}: {common.value_label(ds, j, q_f[j])}"
                             for j, n in enumerate(ds.factor_names)))
    with right:
        st.markdown(f"**{k} nearest neighbours**")
        nf = emb["factors"][nn["positions"]]
        same = nf == q_f[None, :]
        captions = [neighbour_caption(ds.factor_names, same[i]) for i in range(len(nf))]
        common.show_images(src, size, nn["indices"], captions, split=split)
        share = same.mean(axis=0)
        st.caption("Share of these neighbours with the query's value: " + ", ".join(
            f"{n}{' (inactive)' if n in inactive else ''} {share[j]:.0%}"
            for j, n in enumerate(ds.factor_names)))

    st.subheader("Agreement over all queries")
    st.caption("For every probe image, the fraction of its 10 nearest neighbours sharing its "
               "value of each factor; chance is what random neighbours would give.")
    ag = common.agreement(root, rec.run_id, 10, rep)
    names = list(ds.factor_names)
    fig = figures.bars_against(names, [ag[n]["agreement"] for n in names],
                               [ag[n]["chance"] for n in names], inactive,
                               value_name="neighbour agreement", reference_name="chance",
                               y_title="fraction sharing the value", y_range=[0, 1],
                               height=320)
    figure_export.chart(fig, key="r_agree", name="knn-agreement")

    if not ds.is_grid:
        st.subheader("Per-class retrieval grid")
        class_grid_image(rec, ds, emb, rep)


common.run_page(page)

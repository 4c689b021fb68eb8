"""What the mixing autoencoder (seed 003) and reconstruction + contrast (seed 004) show of their
networks on the Embeddings page, from the evaluation cached when their training ended:

- mixing: the chunk x factor matrix of nearest-neighbour mAP (seed 003 Table 2's protocol; the
  best chunk per factor starred) and the chunk-swap grids (Figures 2, 3, 5);
- rci: the invariance accuracies (seed 004 Table 1) and the z_p / z_n transfer grid.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st


def chunk_matrix_figure(scores: dict) -> go.Figure:
    """Heatmap: rows = chunks (then the whole code and chance), columns = factors; the best
    chunk of each factor carries a star."""
    m = scores["map_chunk"]
    chunks, factors = list(m), list(next(iter(m.values())))
    z = np.array([[m[c][f] for f in factors] for c in chunks])  # (8, K)
    best = z.argmax(0)
    text = [[f"{z[i, j]:.2f}" + (" ★" if best[j] == i else "") for j in range(len(factors))]
            for i in range(len(chunks))]
    rows = chunks + ["whole code", "chance"]
    z_all = np.vstack([z, [[scores["map_code"][f] for f in factors]], [[scores["map_chance"][f] for f in factors]]])
    text += [[f"{v:.2f}" for v in z_all[-2]], [f"{v:.2f}" for v in z_all[-1]]]
    fig = go.Figure(go.Heatmap(z=z_all, x=[f.replace("_", " ") for f in factors], y=rows, text=text,
                               texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
                               colorbar=dict(title="mAP")))
    fig.update_layout(height=60 + 34 * len(rows), margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(autorange="reversed"), title="Chunk x factor mAP")
    return fig


def show_mixing(ev: dict, mosaic) -> None:
    scores, images = ev["scores"], ev["images"]
    if "map_chunk" in scores:
        st.subheader("Chunk x factor mAP")
        st.caption(f"Each image queries the other {int(scores['eval_images']) - 1} by Euclidean "
                   "distance in one chunk; mean average precision of retrieving its value of each "
                   "factor (seed 003, Table 2's protocol; ★ = the best chunk of the factor, the "
                   "chunk Table 2 reports). 'whole code' uses all chunks at once (how Table 2 scores "
                   "the plain autoencoder); 'chance' is a random ranking's. Here on this dataset's "
                   "factors, not the paper's Sprites.")
        st.plotly_chart(chunk_matrix_figure(scores), key="mix_matrix", config={"displayModeBar": False})
    if "chunk_swap" in images:
        from acc_core.methods.mixing_eval import swap_grid

        n = len(images["chunk_swap"])  # (8, R, Q, H, W, C) cells
        st.subheader("Chunk swap")
        best = {}
        if "map_chunk" in scores:
            m = scores["map_chunk"]
            for f in next(iter(m.values())):
                best.setdefault(max(m, key=lambda c: m[c][f]), []).append(f.replace("_", " "))
        labels = {i: f"chunk {i}" + (f" ({', '.join(best[f'chunk{i}'])})" if f"chunk{i}" in best else "")
                  for i in range(n)}
        i = st.segmented_control("Chunk", list(labels), format_func=labels.get, default=0,
                                 required=True, key="mix_chunk")
        st.caption(f"Row: image A (the left column), column: image B (the top row); each cell "
                   f"decodes A's feature with chunk {i} taken from B (seed 003, Figures 2 and 5). A "
                   "chunk that holds one factor changes only that factor of A into B's. (Decoded cells "
                   "are stored at 16 levels per channel.)")
        grid = swap_grid(images, i)
        st.image(mosaic(grid), width=min(640, 90 * grid.shape[1]))


def show_rci(ev: dict, mosaic) -> None:
    scores, images = ev["scores"], ev["images"]
    if "accuracy_seen" in scores:
        st.subheader("Invariance (seed 004, Table 1)")
        parts = [f"trained values: accuracy {scores['accuracy_seen']:.3f}, worst group "
                 f"{scores['worst_group_accuracy_seen']:.3f} ({int(scores['groups_seen'])} groups)"]
        if "accuracy_unseen" in scores:
            parts.append(f"held-out values: accuracy {scores['accuracy_unseen']:.3f}, worst group "
                         f"{scores['worst_group_accuracy_unseen']:.3f} ({int(scores['groups_unseen'])} groups)")
        st.caption("The run's classifier on z_p predicting its class. " + "; ".join(parts) + ". "
                   "Table 1's split trains on half of a nuisance factor's values and tests on the "
                   "rest: hold those values out in the data config (object hues 5-9 on Shapes3D "
                   "with shape as the class; backgrounds 3-5 of digits-colored).")
    if "zp_transfer_grid" in images:
        st.subheader("z_p / z_n transfer")
        st.caption("Row: the image giving z_p (the predictive part); column: the image giving z_n "
                   "(the nuisance part); each cell decodes [z_p of the row, z_n of the column]. A good "
                   "split keeps the row's class and everything else of the column. (Decoded "
                   "cells are stored at 16 levels per channel.)")
        g = images["zp_transfer_grid"]
        st.image(mosaic(g), width=min(640, 90 * g.shape[1]))


def show(ev: dict, mosaic, method: str) -> None:
    """The views of `method`'s cached evaluation `ev`; `mosaic` draws an image grid."""
    if method == "mixing":
        from acc_core.methods.mixing import DEPARTURES as notes

        show_mixing(ev, mosaic)
    elif method == "rci":
        from acc_core.methods.rci import CHOICES as notes

        show_rci(ev, mosaic)
    else:
        return
    title = "Departures from the paper" if method == "mixing" else "Choices the paper leaves open"
    with st.expander(title):
        st.markdown("\n".join(f"- {n}" for n in notes))

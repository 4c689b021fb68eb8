"""Loss of random points: why ACC keeps more than one factor (seed 000 appendix D, Figure 9).

Two sets of points drawn uniformly from the unit hypercube stand in for ideal embeddings of
randomly distributed factors. Their ACC loss, averaged over many draws, falls as the
dimension grows once sets hold more than about ten points: the loss rewards embedding
several independent factors. A classroom page: everything is a Monte Carlo run here.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common

SET_SIZES = [2, 4, 8, 16, 32, 64, 128]


@st.cache_data(show_spinner="Drawing random sets…", max_entries=32)
def curve(set_sizes: tuple[int, ...], dims: tuple[int, ...], n_trials: int,
          temperature: float | None, similarity: str) -> np.ndarray:
    from acc_core.analysis.loss_mc import random_loss_curve

    return np.asarray(random_loss_curve(list(set_sizes), list(dims), n_trials=n_trials,
                                        temperature=temperature, similarity=similarity, seed=0))


def page() -> None:
    st.title("Loss of random points")
    st.caption("If one factor is enough to match two sets, why do trained embeddings keep "
               "several? Here the 'embeddings' are random points, uniform in a unit cube of "
               "1 to 5 dimensions (each dimension an independent factor). For sets of more than "
               "about ten points, more dimensions give a lower ACC loss: the loss itself "
               "rewards keeping several independent factors (seed 000, appendix D).")
    c = st.columns(3)
    dims = c[0].multiselect("Dimensions", [1, 2, 3, 4, 5], default=[1, 2, 3, 5], key="l_dims")
    sizes = c[1].multiselect("Set sizes", SET_SIZES, default=SET_SIZES[:6], key="l_sizes")
    trials = c[2].select_slider("Random draws per point", [100, 300, 1000, 3000, 10000],
                                value=1000, key="l_trials",
                                help="The paper averages 10,000 draws; 1,000 takes seconds.")
    c = st.columns(3)
    tune = c[0].toggle("Optimise the temperature", value=True, key="l_tune",
                       help="A trained network scales its embedding to the temperature; fixed "
                            "random points cannot, so the best temperature is searched for "
                            "each point of the curve instead (as in the paper).")
    temperature = None
    if not tune:
        temperature = c[1].number_input("Temperature τ", 1e-3, 10.0, 0.1, format="%g",
                                        key="l_temperature")
    similarity = c[2].selectbox("Similarity", ["l2sq", "l2", "cosine"], key="l_similarity")
    if not dims or not sizes:
        st.info("Choose at least one dimension and one set size.")
        return
    dims_t, sizes_t = tuple(sorted(dims)), tuple(sorted(sizes))
    loss = curve(sizes_t, dims_t, int(trials), temperature, similarity)  # (D, S)

    import plotly.graph_objects as go

    fig = go.Figure()
    for i, d in enumerate(dims_t):
        fig.add_trace(go.Scatter(x=sizes_t, y=loss[i], mode="lines+markers",
                                 name=f"{d} dimension{'s' if d > 1 else ''}"))
    fig.add_trace(go.Scatter(x=sizes_t, y=np.log(sizes_t), mode="lines", name="log N (chance)",
                             line=dict(color="#999", dash="dot")))
    fig.update_xaxes(type="log", title="set size N")
    fig.update_layout(title="ACC loss of two random sets, averaged over draws",
                      yaxis_title="loss", height=420, margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, key="l_plot")
    st.caption("log N is the loss of an embedding that cannot tell points apart (every point "
               "equally likely). The gap between the curves is what an extra independent "
               "factor is worth to the loss.")


common.run_page(page)

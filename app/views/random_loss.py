"""Loss of random points: why ACC keeps more than one factor (the ACC paper, appendix D).

Two sets of points drawn uniformly from the unit hypercube stand in for ideal embeddings of
randomly distributed factors. Their ACC loss, averaged over many draws, falls as the
dimension grows once sets hold more than about ten points: the loss rewards embedding
several independent factors. A classroom page: everything is a Monte Carlo run here.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import figure_export

SET_SIZES = [2, 4, 8, 16, 32, 64, 128]


@st.cache_data(show_spinner=False, max_entries=32)
def curve(set_sizes: tuple[int, ...], dims: tuple[int, ...], n_trials: int,
          temperature, similarity: str) -> tuple[np.ndarray, np.ndarray]:
    """(loss, temperature used), each (len(dims), len(set_sizes))."""
    from acc_core.analysis.loss_mc import random_loss_curve

    loss, tau = random_loss_curve(list(set_sizes), list(dims), n_trials=n_trials,
                                  temperature=temperature, similarity=similarity, seed=0,
                                  return_temperature=True)
    return np.asarray(loss), np.asarray(tau)


def page() -> None:
    st.title("Loss of random points")
    st.caption("If one factor is enough to match two sets, why do trained embeddings keep "
               "several? Here the 'embeddings' are random points, uniform in a unit cube of "
               "1 to 5 dimensions (each dimension an independent factor). For sets of more than "
               "about ten points, more dimensions give a lower ACC loss: the loss itself "
               "rewards keeping several independent factors (the ACC paper, appendix D).")
    c = st.columns(3)
    dims = c[0].multiselect("Dimensions", [1, 2, 3, 4, 5], default=[1, 2, 3], key="l_dims")
    sizes = c[1].multiselect("Set sizes", SET_SIZES, default=SET_SIZES[:5], key="l_sizes")
    trials = c[2].select_slider("Random draws per point", [50, 100, 200, 500, 1000, 3000, 10000],
                                value=200, key="l_trials",
                                help="The paper averages 10,000 draws; a few hundred show the "
                                     "trend in under a minute.")
    c = st.columns(3)
    tune = c[0].toggle("Optimise the temperature", value=True, key="l_tune",
                       help="A trained network scales its embedding to the temperature; fixed "
                            "random points cannot, so the best temperature is searched for "
                            "each point of the curve instead (as in the paper). About 25 times "
                            "slower than a fixed temperature.")
    temperature = "optimize"
    if not tune:
        temperature = float(c[1].number_input("Temperature τ", 1e-3, 10.0, 0.05, format="%g",
                                              key="l_temperature"))
    similarity = c[2].selectbox("Similarity", ["l2sq", "l2", "cosine"], key="l_similarity")
    if not dims or not sizes:
        st.info("Choose at least one dimension and one set size.")
        return
    params = (tuple(sorted(sizes)), tuple(sorted(dims)), int(trials), temperature, similarity)
    done = st.session_state.setdefault("l_done", [])
    if st.button("Run the simulation", type="primary", key="l_run"):
        with st.spinner("Drawing random sets (big sets and many draws take a minute)…"):
            curve(*params)
        done.append(params)
    if params not in done:
        st.info("Press **Run the simulation** to draw the random sets and plot the curves.")
        return
    sizes_t, dims_t = params[0], params[1]
    loss, tau = curve(*params)  # (D, S) each, from the cache

    import plotly.graph_objects as go

    fig = go.Figure()
    for i, d in enumerate(dims_t):
        fig.add_trace(go.Scatter(x=sizes_t, y=loss[i], mode="lines+markers",
                                 name=f"{d} dimension{'s' if d > 1 else ''}",
                                 customdata=tau[i],
                                 hovertemplate="N=%{x}: loss %{y:.3f} (τ=%{customdata:.3g})"
                                               "<extra></extra>"))
    fig.update_xaxes(type="log", title="set size N", tickvals=list(sizes_t))
    fig.update_layout(title="ACC loss of two random sets, averaged over draws",
                      yaxis_title="loss", height=420, margin=dict(l=10, r=10, t=40, b=10))
    figure_export.chart(fig, key="l_plot", name="loss-of-random-points")
    st.caption(f"For scale: an embedding that cannot tell points apart has loss log N "
               f"({np.log(sizes_t[-1]):.2f} at N = {sizes_t[-1]}). Where the curves of more "
               "dimensions lie lower, an extra independent factor lowers the loss. Hover for "
               "the temperature used at each point.")


common.run_page(page)

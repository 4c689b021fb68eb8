"""Information: how much each generative factor survives in a run's embedding.

Mutual information I(U + N(0, σ²I); G) between the embedding with Gaussian noise of scale σ
and each factor G (the ABC supplement, S1-S2 and Figures S1/S3): the noise sweep shows the
length scale at which information lives; √τ (l2sq) is the scale below which the loss stops
caring, so the inactive factors should only survive below it. The fast estimator is the
exact Gaussian channel; MINE (the ABC supplement, S1) is a spot check. Probes are the
papers' 3x32 classifiers.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import figure_export
import figures
import seeds_view
from seeds_view import same_but_seed


def sigma_label(s: float) -> str:
    return f"{s:.3g}"


def mi_bars(names, mi, entropy, inactive, sigma):
    return figures.bars_against(names, mi, entropy, inactive, value_name="I(U + noise; G)",
                                reference_name="H(G): all there is to know", y_title="nats",
                                title=f"Mutual information at σ = {sigma_label(sigma)}",
                                height=360)


def sweep_plot(sweep: dict, inactive, sigma):
    """MI against σ; for a code without a loss length scale, against σ / RMS radius."""
    import plotly.express as px
    import plotly.graph_objects as go

    unit = sweep.get("unit") or {"kind": "length scale"}
    rel = unit["kind"] == "rms radius"
    scale = float(unit["value"]) if rel else 1.0
    sig = np.asarray(sweep["sigmas"], dtype=float) / scale
    mi = np.asarray(sweep["mi"], dtype=float)
    pal = px.colors.qualitative.D3
    fig = go.Figure()
    for k, name in enumerate(sweep["factor_names"]):
        off = name in inactive
        fig.add_trace(go.Scatter(
            x=sig, y=mi[k], mode="lines", name=f"{name} (inactive)" if off else name,
            line=dict(color=pal[k % len(pal)], dash="dash" if off else "solid", width=2)))
    ls = sweep.get("length_scale")
    if ls:
        fig.add_vline(x=ls, line=dict(color="black", dash="dot"),
                      annotation_text=f"{ls_symbol(sweep)} (length scale)",
                      annotation_position="top right")
    if rel:
        from acc_core.evaluate import REL_SIGMA

        fig.add_vline(x=REL_SIGMA, line=dict(color="black", dash="dot"),
                      annotation_text=f"{REL_SIGMA:g} x RMS radius (default)",
                      annotation_position="top right")
    fig.add_vline(x=sigma / scale, line=dict(color="#d62728", width=1))
    fig.update_xaxes(type="log", title="σ / RMS radius of the code" if rel else "noise scale σ")
    fig.update_layout(title="Noise sweep: information against noise scale", yaxis_title="nats",
                      height=380, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def ls_symbol(sweep: dict) -> str:
    """How the loss's length scale is written for the run's similarity."""
    return {"l2": "τ", "cosine": "√(2τ)"}.get(sweep.get("similarity"), "√τ")


def page() -> None:
    st.title("Information")
    st.caption("How much does the embedding tell about each factor? Gaussian noise of scale σ "
               "is added to the embeddings and the mutual information with each factor is "
               "measured in nats; H(G) is the most there is to know. Each factor has its colour; "
               "inactive factors are drawn as dashed lines in it (active ones solid) and "
               "should be gone above the loss's length scale (√τ for ACC; the dotted line).")
    runs = common.list_runs("done")
    rec = common.pick_run(runs, key="i_run")
    if rec is None:
        return
    rep = common.pick_representation(rec, key="i_rep")
    unit = common.noise_unit(common.root(), rec.run_id, rep)
    if unit["kind"] == "rms radius":
        st.caption(f"{rec.config.method.title} has no loss length scale, so noise is stated "
                   f"relative to the RMS radius of its final code ({unit['value']:.3g}); the "
                   "default σ is a quarter of it, about where √τ sits in the shipped ACC runs.")
    noise_section(rec.run_id, [r.run_id for r in same_but_seed(rec, runs)], rep)
    mine_section(rec.run_id, rep)
    probe_section(rec.run_id, rep)


def chosen_sigma(run_id: str, sweep: dict, rep=None) -> float:
    """The slider's σ, or the default σ (the sweep's point nearest to it) before the slider
    exists: the length scale, or a quarter of the code's RMS radius."""
    sigmas = [float(s) for s in sweep["sigmas"]]
    ref = common.default_sigma(common.root(), run_id, rep)
    start = min(sigmas, key=lambda s: abs(np.log(s / ref)))
    return float(st.session_state.get(sigma_key(run_id, rep), start))


def sigma_key(run_id: str, rep=None) -> str:
    return f"i_sigma_{run_id}" if rep is None else f"i_sigma_{run_id}_{rep}"


@st.fragment
@common.guard
def noise_section(run_id: str, seed_group: list[str], rep=None) -> None:
    """σ slider, MI bars, the noise sweep and the spread across seeds. A fragment: moving the
    slider reruns only this part; every value comes from the cached sweep."""
    root = common.root()
    rec = common.get_run(run_id)
    sweep = common.noise_sweep(root, run_id, rep=rep)
    names = list(sweep["factor_names"])
    inactive = common.inactive_factors(rec.config)
    sigmas = [float(s) for s in sweep["sigmas"]]
    sigma = st.select_slider("Noise scale σ", sigmas, value=chosen_sigma(run_id, sweep, rep),
                             format_func=sigma_label, key=sigma_key(run_id, rep))
    mi = np.asarray(sweep["mi"], dtype=float)[:, sigmas.index(sigma)]
    left, right = st.columns(2)
    figure_export.chart(mi_bars(names, mi, sweep["entropy"], inactive, sigma), key="i_bars",
                        where=left, name="mutual-information")
    figure_export.chart(sweep_plot(sweep, inactive, sigma), key="i_sweep", where=right,
                        name="noise-sweep")

    st.subheader("Across seeds")
    if len(seed_group) < 2:
        st.caption("Only one finished seed of this configuration. Launch more seeds from the "
                   "Train page (e.g. '0-4') or with `acc sweep --seeds 0-9` to see how much "
                   "the result varies.")
        return
    group = {"title": f"{len(seed_group)} seeds of this configuration", "inactive": inactive,
             **seeds_view.seed_values(seed_group, lambda rid: sigma, rep=rep)}
    seeds_view.show_seed_spread([group], key="i_violin",
                                title=f"MI at σ = {sigma_label(sigma)} over {len(seed_group)} seeds")


@st.fragment
@common.guard
def mine_section(run_id: str, rep=None) -> None:
    root = common.root()
    rec = common.get_run(run_id)
    sweep = common.noise_sweep(root, run_id, rep=rep)
    names = list(sweep["factor_names"])
    st.subheader("Estimator check")
    st.caption("The bars use the exact Gaussian-channel estimate (fast). MINE trains a small "
               "statistics network to lower-bound the same quantity, as the papers did: run it "
               "for one factor at the chosen σ to cross-check.")
    c = st.columns([2, 1, 1], vertical_alignment="bottom")
    factor = c[0].selectbox("Factor", names, key="i_mine_factor")
    steps = c[1].number_input("MINE steps", min_value=200, max_value=20_000, value=2000,
                              step=200, key="i_mine_steps",
                              help="The papers used 20,000; 2,000 takes seconds.")
    results = st.session_state.setdefault("i_mine_results", {})
    if c[2].button("Run MINE", key="i_mine", help="At the σ chosen above."):
        from acc_core import evaluate

        sigma = chosen_sigma(run_id, sweep, rep)
        with st.spinner("Training the MINE statistics network…"):
            est = evaluate.mine_spot_check(rec, factor, sigma, int(steps), rep=rep)
        results[(run_id, rep, factor, sigma, int(steps))] = est
    for (rid, rp, f, s, n), est in results.items():
        if rid == run_id and rp == rep:
            g = float(common.mi_at(root, run_id, s, rep=rep)[names.index(f)])
            st.markdown(f"- `{f}` at σ = {sigma_label(s)}: MINE ({n} steps) **{est:.3f}** nats, "
                        f"Gaussian channel **{g:.3f}** nats")


def probe_section(run_id: str, rep=None) -> None:
    root = common.root()
    rec = common.get_run(run_id)
    sweep = common.noise_sweep(root, run_id, rep=rep)
    names = list(sweep["factor_names"])
    inactive = common.inactive_factors(rec.config)
    ls = sweep.get("length_scale")
    sigma = common.default_sigma(root, run_id, rep)
    st.subheader("Probes")
    st.caption("A small classifier (3 layers of 32 units) per factor, trained on noisy "
               f"embeddings at σ = {sigma_label(sigma)}"
               f"{f' ({ls_symbol(sweep)})' if ls else ' (a quarter of the RMS radius)'}; "
               "accuracy far above chance means the factor can be read from the embedding.")
    pr = common.probes(root, run_id, sigma, rep=rep)
    fig = figures.bars_against(names, [pr[n]["accuracy"] for n in names],
                               [pr[n]["chance"] for n in names], inactive,
                               value_name="probe accuracy", reference_name="chance",
                               y_title="test accuracy", y_range=[0, 1], height=320)
    figure_export.chart(fig, key="i_probes", name="probes")


common.run_page(page)

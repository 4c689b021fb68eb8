"""Compare: several runs side by side (the ACC paper, section 4.1 and Figure 3).

A runs x factors heatmap of the mutual information at one noise scale σ, and the runs'
projections coloured by the same factor, so that changing the weak supervision (which
factors are inactive in set A / set B) can be read off directly.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
import figure_export
import figures
import seeds_view

# Noise relative to each run's own scale: 10^-1 .. 10^1 times it, 4 per decade.
MULTIPLIERS = [float(s) for s in np.round(np.logspace(-1, 1, 9), 4)]


def short_label(r) -> str:
    """Two lines: the run (pretrained name, or method and seed) and its weak supervision."""
    c = r.config
    name = r.label if r.source == "pretrained" else f"{c.train.method} seed {c.train.seed}"
    return f"{r.run_id[:6]} {name} ({c.train.method})<br>{scenario_text(c)}"


scenario_text = common.scenario_text


def scenario_key(c) -> tuple:
    """Runs of different methods on one scenario share data and set specifications (the render
    size is each method's preset's own: the same images at another resolution)."""
    return (c.data.source, tuple(sorted(c.data.held_out.items())), c.set_a.inactive,
            c.set_b.inactive)


FIGURE_3C = ("shapes3d-no-inactive", "shapes3d-wall-hue", "shapes3d-wall-object-hue",
             "shapes3d-all-hues")  # shipped runs: more and more hues inactive


def default_runs(runs: list) -> list[str]:
    """The user's own latest runs if there are any, else the shipped Figure 3c series; at
    most four, on the dataset most of them use: one heatmap, shared factors."""
    own = [r for r in runs if r.source != "pretrained"]
    if not own:
        by_label = {r.label: r.run_id for r in runs}
        series = [by_label[n] for n in FIGURE_3C if n in by_label]
        if series:
            return series
    runs = own or runs
    sources = [r.config.data.source for r in runs]
    common_source = max(dict.fromkeys(sources), key=sources.count)
    return [r.run_id for r in runs if r.config.data.source == common_source][:4]


def linked_runs(runs: list) -> list[str]:
    """Runs named in the address (`compare?runs=ID1,ID2`; unique prefixes or shipped names
    work too), so a link can open a comparison."""
    wanted = [w.strip() for w in st.query_params.get("runs", "").split(",") if w.strip()]
    out = []
    for w in wanted:
        hits = [r.run_id for r in runs if r.run_id.startswith(w) or r.label == w]
        if len(hits) == 1 and hits[0] not in out:
            out.append(hits[0])
    return out


def page() -> None:
    st.title("Compare")
    st.caption("Pick finished runs to put side by side. The heatmap shows how much each "
               "embedding tells about each factor at one noise scale σ (in nats); below, each "
               "run's PCA coloured by one factor.")
    runs = common.list_runs("done")
    if not runs:
        common.pick_run([], key="c_none")
        return
    by_id = {r.run_id: r for r in runs}
    chosen = st.multiselect("Runs", list(by_id), default=linked_runs(runs) or default_runs(runs),
                            key="c_runs",
                            format_func=lambda i: common.run_label(by_id[i]))
    if not chosen:
        st.info("Choose at least one run.")
        return
    if st.toggle("Add every method's run on the first run's scenario", key="c_methods",
                 help="Same data and the same inactive factors, trained by other methods "
                      "(the shipped LORD, VAE and ACC runs of a scenario, for example)."):
        key = scenario_key(by_id[chosen[0]].config)
        seen = {(by_id[i].config.train.method) for i in chosen}
        for r in runs:
            if (scenario_key(r.config) == key and r.config.train.method not in seen
                    and not common.is_seed_copy(r)):
                chosen.append(r.run_id)
                seen.add(r.config.train.method)
    heatmap_section(chosen)
    if st.toggle("Seeds as distributions", key="c_seeds",
                 help="Every finished seed of each chosen configuration, as violins (the ACC "
                      "paper's Figure 3c), with mean ± sd."):
        seeds_view.compare_seeds_section(chosen, runs)
    projection_section(chosen)


def factor_union(recs) -> list[str]:
    names: list[str] = []
    for r in recs:
        names += [n for n in common.run_dataset(r).factor_names if n not in names]
    return names


@st.fragment
@common.guard
def heatmap_section(run_ids: list[str]) -> None:
    """Runs x factors MI at one σ. A fragment: moving σ redraws only the heatmap."""
    import pandas as pd
    import plotly.graph_objects as go

    root = common.root()
    recs = [common.get_run(i) for i in run_ids]
    mult = st.select_slider("Noise scale, relative to each run's own scale", MULTIPLIERS,
                            value=1.0, key="c_sigma", format_func=lambda s: f"{s:g} x",
                            help="Each run is measured at this multiple of its own scale: "
                                 "the loss's length scale (ACC: √τ, whatever τ is), or a "
                                 "quarter of the code's RMS radius for codes without one "
                                 "(LORD, VAEs).")
    names = factor_union(recs)
    z = np.full((len(recs), len(names)), np.nan)
    text = [["" for _ in names] for _ in recs]
    sigmas = []
    for i, r in enumerate(recs):
        inactive = common.inactive_factors(r.config)
        sigma = mult * common.default_sigma(root, r.run_id)
        sigmas.append(sigma)
        vals = common.mi_at(root, r.run_id, sigma)
        for n, v in zip(common.run_dataset(r).factor_names, vals):
            j = names.index(n)
            z[i, j] = float(v)
            # Monte Carlo estimates can dip a hair below zero; the true value cannot.
            text[i][j] = f"{max(float(v), 0.0):.2f}" + (" ✕" if n in inactive else "")
    labels = [short_label(r) + f" · σ {s:.3g}" for r, s in zip(recs, sigmas)]
    fig = go.Figure(go.Heatmap(z=z, x=names, y=labels, text=text, texttemplate="%{text}",
                               colorscale="Blues", colorbar=dict(title="nats"),
                               hovertemplate="%{y}<br>%{x}: %{z:.3f} nats<extra></extra>"))
    fig.update_layout(title=f"I(U + noise; G) at {mult:g} x each run's own noise scale",
                      height=140 + 60 * len(recs),
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
    figure_export.chart(fig, key="c_heatmap", name="compare-heatmap")
    st.caption("✕ marks a factor that was inactive (held fixed within a set) in that run. "
               "Rows: run id and name, then the factors held fixed in set A and set B.")
    with st.expander("Table"):
        index = [lab.replace("<br>", " | ") for lab in labels]
        st.dataframe(pd.DataFrame(z, index=index, columns=names).round(3))


@st.fragment
@common.guard
def projection_section(run_ids: list[str]) -> None:
    """Each run's PCA coloured by the same factor. A fragment: recolouring redraws only this."""
    root = common.root()
    recs = [common.get_run(i) for i in run_ids]
    st.subheader("Projections")
    names = factor_union(recs)
    # Default: the factor most of the chosen runs have (runs may be on different datasets).
    counts = [sum(n in common.run_dataset(r).factor_names for r in recs) for n in names]
    name = st.selectbox("Colour by", names, index=int(np.argmax(counts)), key="c_colour")
    per_row = 3
    for start in range(0, len(recs), per_row):
        cols = st.columns(per_row)
        for col, r in zip(cols, recs[start:start + per_row]):
            ds = common.run_dataset(r)
            with col:
                if name not in ds.factor_names:
                    st.caption(f"{short_label(r).replace('<br>', ' | ')}: no factor "
                               f"{name!r} in {r.config.data.source}.")
                    continue
                p = common.projection(root, r.run_id, "final", "pca")
                inactive = name in common.inactive_factors(r.config)
                fig = figures.scatter_by_factor(
                    p["coords"], p["factors"], ds, ds.factor_names.index(name), height=340,
                    title=short_label(r) + (f"<br>{name} inactive here" if inactive else ""))
                fig.update_layout(dragmode="zoom", showlegend=False, title_font_size=12)
                figure_export.chart(fig, key=f"c_pca_{r.run_id}", name=f"compare-pca-{r.run_id}")


common.run_page(page)

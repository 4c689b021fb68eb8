"""Figures shared by the pages: factor colours, small multiples, selectable scatters, bars.

The ACC paper, Figures 1 and 3: projections of the embedding coloured by each generative factor,
inactive factors marked; bars of a per-factor score against a reference (chance or the
entropy H(G)). Pure functions from arrays to plotly figures; no Streamlit calls.
"""

from __future__ import annotations

import colorsys

import numpy as np

import common

CATEGORICAL = ("shape", "digit")  # factors whose values have no order
GRID_POINTS = 500  # points per small-multiple panel: more only slows the browser down
ACTIVE_COLOUR, INACTIVE_COLOUR = "#1f77b4", "#c7c7c7"


def factor_tick(name: str, inactive) -> str:
    """An axis label that marks inactive factors on a second line (short ticks stay level)."""
    return f"{name}<br>(inactive)" if name in inactive else name


def factor_palette(ds, k: int) -> list[str]:
    """One CSS colour per value of factor k: hues as themselves, categories as a palette,
    ordered factors along Viridis."""
    import plotly.express as px

    name, n = ds.factor_names[k], ds.factor_sizes[k]
    if "hue" in name:
        hues = np.asarray(ds.factor_values[k], dtype=float)
        return ["rgb(%d,%d,%d)" % tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h % 1, .85, .9))
                for h in hues]
    if name in CATEGORICAL:
        pal = px.colors.qualitative.D3
        return [pal[i % len(pal)] for i in range(n)]
    return px.colors.sample_colorscale("Viridis", [i / max(n - 1, 1) for i in range(n)])


def factor_marker(ds, k: int, values: np.ndarray, size: int) -> dict:
    """A marker coloured by value index through a stepped colour scale.

    Numbers with a colour scale, not one CSS string per point: plotly validates a list of
    colour strings point by point, which made a figure of 12 panels take seconds to build.
    """
    pal = factor_palette(ds, k)
    n = len(pal)
    scale = [[(i + j) / n, c] for i, c in enumerate(pal) for j in (0, 1)]
    return dict(size=size, color=np.asarray(values, dtype=np.int64), colorscale=scale,
                cmin=-0.5, cmax=n - 0.5, showscale=False)


def subsample(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """Positions of at most `cap` of n points, fixed for a given n (so plots do not jitter)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def small_multiples(rows: list[tuple[str, np.ndarray]], factors: np.ndarray, ds,
                    inactive: list[str], *, cap: int = GRID_POINTS, height_per_row: int = 230):
    """Rows of projections (title, coords (N, 2)) x one scatter per factor, coloured by it."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    K = len(ds.factor_names)
    keep = subsample(len(factors), cap)
    titles = [f"{name} (inactive)" if name in inactive else name for name in ds.factor_names]
    fig = make_subplots(rows=len(rows), cols=K, row_titles=[r[0] for r in rows],
                        subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.06)
    for r, (_, coords) in enumerate(rows, start=1):
        for k in range(K):
            v = factors[keep, k]
            fig.add_trace(go.Scatter(
                x=coords[keep, 0], y=coords[keep, 1], mode="markers",
                marker=factor_marker(ds, k, v, 4),
                text=common.value_labels(ds, k, v),
                hovertemplate=f"{ds.factor_names[k]}: %{{text}}<extra></extra>",
                showlegend=False), row=r, col=k + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for k, name in enumerate(ds.factor_names):  # inactive factors: grey titles
        if name in inactive:
            fig.layout.annotations[k].font.color = "#999"
    fig.update_layout(height=height_per_row * len(rows) + 40, margin=dict(l=10, r=40, t=40, b=10))
    return fig


def scatter_by_factor(coords: np.ndarray, factors: np.ndarray, ds, k: int, *, title: str = "",
                      height: int = 460):
    """One projection coloured by factor k, with a legend of its values; trace 0 holds all
    points in order (so a box/lasso selection's point indices are positions)."""
    import plotly.graph_objects as go

    v = factors[:, k]
    fig = go.Figure(go.Scatter(
        x=coords[:, 0], y=coords[:, 1], mode="markers", marker=factor_marker(ds, k, v, 6),
        text=common.value_labels(ds, k, v), showlegend=False,
        hovertemplate=(f"{ds.factor_names[k]}: %{{text}}<br>position %{{pointIndex}}"
                       "<extra></extra>")))
    # Legend only: one empty trace per value present, so the colour key is readable.
    pal = factor_palette(ds, k)
    for val in np.unique(v).tolist():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers",
                                 name=common.value_label(ds, k, val),
                                 marker=dict(size=8, color=pal[val])))
    fig.update_layout(title=title, height=height, dragmode="select",
                      legend=dict(title=ds.factor_names[k]), margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def scatter_continuous(coords: np.ndarray, values: np.ndarray, name: str, *, title: str = "",
                       height: int = 460):
    """One projection coloured by a continuous per-image measure (trace 0: every point, in
    order, so a selection's point indices are positions)."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(
        x=coords[:, 0], y=coords[:, 1], mode="markers",
        marker=dict(size=6, color=values, colorscale="Viridis", showscale=True,
                    colorbar=dict(title=name)),
        hovertemplate=f"{name}: %{{marker.color:.2f}}<br>position %{{pointIndex}}<extra></extra>"))
    fig.update_layout(title=title, height=height, dragmode="select", showlegend=False,
                      margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def bars_against(names, values, reference, inactive, *, reference_name: str, y_title: str,
                 title: str = "", y_range=None, value_name: str = "", height: int = 340):
    """One bar per factor (inactive ones grey) with a reference mark (chance, or H(G))."""
    import plotly.graph_objects as go

    labels = [factor_tick(n, inactive) for n in names]
    fig = go.Figure([
        go.Bar(x=labels, y=values, name=value_name,
               marker_color=[INACTIVE_COLOUR if n in inactive else ACTIVE_COLOUR for n in names],
               hovertemplate="%{x}: %{y:.3f}<extra></extra>"),
        go.Scatter(x=labels, y=reference, mode="markers", name=reference_name,
                   marker=dict(symbol="line-ew-open", size=28, color="#d62728",
                               line=dict(width=2))),
    ])
    fig.update_layout(title=title, yaxis=dict(range=y_range, title=y_title), height=height,
                      margin=dict(l=10, r=10, t=40 if title else 20, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def loss_curve(steps: np.ndarray, loss: np.ndarray, *, height: int = 320):
    """The training loss per step, with a running mean so the trend shows through the noise."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=steps, y=loss, mode="lines", name="loss",
                               line=dict(color="#bbb")))
    w = max(1, len(loss) // 30)
    if w > 1:
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        fig.add_trace(go.Scatter(x=steps[w - 1:], y=smooth, mode="lines", name=f"mean of {w}",
                                 line=dict(color=ACTIVE_COLOUR)))
    fig.update_layout(title="ACC loss", xaxis_title="step", height=height,
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig

"""Every chart on the pages can be saved as PNG and as SVG.

The pages draw with plotly. Its modebar saves one format only (`toImageButtonOptions` takes a
single `format`), and some charts hide the modebar; so `chart` draws a figure with the modebar
saving PNG at twice the screen's resolution, and adds two download buttons beside it, PNG
and SVG, rendered on the server by plotly's kaleido when clicked (kaleido drives an installed
Chrome or Chromium; it is in the `explore` extra). Saved figures use plotly's own theme, not
Streamlit's.
"""

from __future__ import annotations

import os
import shutil
import time

import streamlit as st

EXTRA = "pip install 'acc-explorer[explore]'"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
MODEBAR = {"toImageButtonOptions": {"format": "png", "scale": 2}, "displaylogo": False}


@st.cache_resource(show_spinner=False)
def why_not() -> str | None:
    """Why figures cannot be rendered on this server (one line with the fix), or None."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return f"saving figures needs kaleido: {EXTRA}"
    found = os.environ.get("BROWSER_PATH") or next((b for b in BROWSERS if shutil.which(b)), None)
    if not found:
        return "saving figures needs Chrome or Chromium installed (kaleido drives it)"
    return None


def render(fig, fmt: str) -> bytes:
    """A figure -> PNG (twice the on-screen resolution) or SVG bytes."""
    import plotly.io as pio

    size = {"width": fig.layout.width or 1100, "height": fig.layout.height or 500}
    for attempt in range(3):
        try:
            return pio.to_image(fig, format=fmt, scale=2 if fmt == "png" else 1, **size)
        except Exception as e:  # kaleido's browser tab can be asked before its script loaded
            if attempt == 2 or "kaleido" not in type(e).__module__:
                raise
            time.sleep(0.5)


def save_buttons(fig, key: str, name: str | None = None, where=None) -> None:
    """PNG and SVG download buttons for `fig`, rendered only when clicked."""
    where = where or st
    reason = why_not()
    row = where.container(horizontal=True, gap="small", key=f"save_{key}")
    for fmt, mime in (("png", "image/png"), ("svg", "image/svg+xml")):
        row.download_button(
            fmt.upper(), data=lambda fmt=fmt: render(fig, fmt), file_name=f"{name or key}.{fmt}",
            mime=mime, key=f"save_{key}_{fmt}", icon=":material/download:", type="tertiary",
            on_click="ignore", disabled=reason is not None,
            help=reason or f"save this chart as {fmt.upper()}")


def chart(fig, *, key: str, where=None, name: str | None = None, config: dict | None = None,
          **kwargs):
    """`st.plotly_chart` (in `where`, e.g. a column) with the save buttons under it; returns
    what plotly_chart returns (the selection event when `on_select` is set)."""
    where = where or st
    shown = {**MODEBAR, **(config or {})}
    out = where.plotly_chart(fig, key=key, config=shown, **kwargs)
    save_buttons(fig, key, name, where)
    return out

"""Every chart can be saved as PNG and SVG (app/figure_export.py): kaleido renders a page's
figure, and the pages put the two buttons under each chart."""

from __future__ import annotations

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"


@pytest.fixture()
def figure_export(monkeypatch):
    monkeypatch.syspath_prepend(str(APP))
    import figure_export

    return figure_export


def test_a_figure_renders_to_png_and_svg(figure_export):
    pytest.importorskip("kaleido", reason="kaleido is not installed (the explore extra)")
    if figure_export.why_not.__wrapped__():
        pytest.skip(figure_export.why_not.__wrapped__())
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=["floor_hue", "shape"], y=[2.3, 0.1]))
    svg = figure_export.render(fig, "svg")
    png = figure_export.render(fig, "png")
    assert svg.lstrip().startswith(b"<svg") and b"floor_hue" in svg
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pages_offer_png_and_svg_under_each_chart(acc_home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP / "Home.py"), default_timeout=120).run()
    at.switch_page("views/information.py").run()
    assert not at.exception, [e.value for e in at.exception]
    buttons = at.get("download_button")
    labels = [b.proto.label for b in buttons]
    for key in ("i_bars", "i_sweep"):
        keys = [b.proto.id for b in buttons if f"save_{key}_" in b.proto.id]
        assert len(keys) == 2, (key, labels)
    assert labels.count("PNG") == labels.count("SVG") >= 2

"""The shipped mixing-autoencoder and rci runs in the app, headless (AppTest): their own views
on the Embeddings page (chunk x factor matrix, chunk-swap grid, invariance scores, z_p / z_n
transfer) open from the cached evaluation alone, and every code is pickable."""

from __future__ import annotations

import json

import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from acc_core import pretrained

HOME = str(REPO / "app" / "Home.py")
SHIPPED = REPO / "pretrained"
IDS = {p["name"]: p["run_id"] for p in pretrained.list_pretrained(SHIPPED)}


def clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def embeddings_of(name: str, monkeypatch) -> AppTest:
    if name not in IDS:
        pytest.skip(f"{name} is not shipped")
    monkeypatch.setenv("ACC_PRETRAINED_DIR", str(SHIPPED))
    at = AppTest.from_file(HOME, default_timeout=120)
    at.session_state["selected_run"] = IDS[name]
    at.run()
    at.switch_page("views/embeddings.py").run()
    clean(at)
    return at


def test_a_mixing_run_shows_its_chunk_matrix_and_swaps(acc_home, monkeypatch):
    at = embeddings_of("shapes3d-wall-hue-mixing", monkeypatch)
    heads = [s.value for s in at.subheader]
    assert "Chunk x factor mAP" in heads and "Chunk swap" in heads
    matrix = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                  if "Chunk x factor" in c.proto.spec)
    assert matrix["data"][0]["y"][:8] == [f"chunk{i}" for i in range(8)]
    assert sum("★" in cell for row in matrix["data"][0]["text"] for cell in row) == 6  # one per factor
    assert any("chunk 0 taken from B" in c.value for c in at.caption)  # the first chunk's grid
    rep = at.selectbox(key=f"e_rep_{IDS['shapes3d-wall-hue-mixing']}")
    assert rep.options == ["code"] + [f"chunk{i}" for i in range(8)]
    rep.set_value("chunk3").run()
    clean(at)
    for view in ("views/information.py", "views/retrieval.py"):  # any page opens a mixing run
        at.switch_page(view).run()
        clean(at)


def test_an_rci_run_shows_its_invariance_scores_and_transfer(acc_home, monkeypatch):
    at = embeddings_of("shapes3d-wall-hue-rci", monkeypatch)
    heads = [s.value for s in at.subheader]
    assert "Invariance (seed 004, Table 1)" in heads and "z_p / z_n transfer" in heads
    assert any("trained values: accuracy" in c.value for c in at.caption)
    rep = at.selectbox(key=f"e_rep_{IDS['shapes3d-wall-hue-rci']}")
    assert rep.options == ["z", "z_p", "z_n"]
    rep.set_value("z_n").run()
    clean(at)

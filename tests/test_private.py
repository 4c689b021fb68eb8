"""The app is private by default: Streamlit binds to the loopback interface only."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_app_listens_on_localhost_only():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture()
def acc_home(tmp_path, monkeypatch):
    """A private run store for the test."""
    home = tmp_path / "runs"
    monkeypatch.setenv("ACC_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_user_data_dir(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's data dir."""
    if "ACC_DATA_DIR" not in os.environ:
        monkeypatch.setenv("ACC_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))

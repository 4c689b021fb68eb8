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
    """Tests never read or write the user's data dir or run store."""
    if "ACC_DATA_DIR" not in os.environ:
        monkeypatch.setenv("ACC_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
    if "ACC_HOME" not in os.environ:
        monkeypatch.setenv("ACC_HOME", str(tmp_path_factory.getbasetemp() / "default-runs"))


def tiny_shapes_config(seed: int = 0, steps: int = 10, probe_size: int = 300):
    """A run that trains in seconds on a CPU: procedural Shapes3D at 32 px, 8-D, sets of 8."""
    import dataclasses

    from acc_core.config import preset

    cfg = preset("quick", "shapes3d-procedural")
    every = max(1, steps // 2)
    return cfg.replace(
        model=dataclasses.replace(cfg.model, embedding_dim=8),
        train=dataclasses.replace(cfg.train, steps=steps, set_size=8, snapshot_every=every,
                                  checkpoint_every=every, probe_size=probe_size, seed=seed))

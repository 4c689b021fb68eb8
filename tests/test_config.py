import dataclasses

import pytest

from acc_core.config import DataConfig, RunConfig, SetSpec, TrainConfig, preset, validate


def test_run_id_is_stable_and_config_round_trips():
    cfg = preset("paper", "shapes3d-procedural")
    again = RunConfig.from_json(cfg.canonical_json())
    assert again == cfg
    assert again.run_id == cfg.run_id
    assert len(cfg.run_id) == 12


def test_different_configs_have_different_ids():
    cfg = preset("quick")
    other = cfg.replace(train=dataclasses.replace(cfg.train, seed=1))
    assert cfg.run_id != other.run_id
    b_free = cfg.replace(set_b=SetSpec(inactive=()))
    assert b_free.run_id != cfg.run_id


def test_held_out_survives_json():
    cfg = preset("paper", "digits")
    assert cfg.data.held_out == {"digit": (9,)}
    assert RunConfig.from_json(cfg.canonical_json()).data.held_out == {"digit": (9,)}


def test_paper_presets_follow_the_supplement():
    s = preset("paper", "shapes3d-procedural").train
    assert (s.steps, s.lr, s.set_size, s.similarity, s.temperature) == (2000, 3e-5, 32, "l2sq", 1.0)
    m = preset("paper", "mnist")
    assert (m.train.steps, m.train.lr, m.train.set_size, m.model.embedding_dim) == (500, 1e-4, 64, 8)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(temperature=0.0), "temperature must be a finite number > 0"),
        (dict(similarity="dot"), "unknown similarity"),
        (dict(method="simclr"), "unknown method"),
        (dict(set_size=1), "set size"),
        (dict(augmentations=("rotate",)), "unknown augmentation"),
        (dict(double_augmentation=True), "double augmentation needs"),
    ],
)
def test_validate_rejects_impossible_configs(change, message):
    cfg = RunConfig(train=TrainConfig(**change))
    with pytest.raises(ValueError, match=message):
        validate(cfg)


def test_unknown_preset():
    with pytest.raises(ValueError, match="valid: paper, quick"):
        preset("fast")


def test_defaults_validate():
    validate(RunConfig(data=DataConfig()))


def test_the_default_run_store_is_the_users_whatever_the_folder(monkeypatch, tmp_path):
    from acc_core.paths import acc_home

    monkeypatch.delenv("ACC_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.chdir(tmp_path)
    assert acc_home() == (tmp_path / "data-home" / "acc-explorer" / "runs").resolve()
    monkeypatch.setenv("ACC_HOME", str(tmp_path / "mine"))
    assert acc_home() == (tmp_path / "mine").resolve()

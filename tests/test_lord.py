"""LORD (seed 002): known answers for its pieces, the scenario check, and tiny training runs."""

import dataclasses

import numpy as np
import pytest
import torch

from acc_core import rundir
from acc_core import train as train_mod
from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig, preset, validate
from acc_core.methods import lord

torch.set_num_threads(2)

TINY = lord.LordParams(content_dim=4, class_dim=4, generator_channels=4, last_channels=4,
                       encoder_channels=4, encoder_fc=8, batch_size=8, train_images=40,
                       stage1_fraction=0.5, eval_pairs=20)


def tiny_config(source="digits", steps=6, seed=0) -> RunConfig:
    if source == "digits":
        data, inactive = DataConfig(source="digits", held_out={"digit": (9,)}), ("digit",)
    else:
        data, inactive = DataConfig(source="shapes3d-procedural", image_size=16), ("wall_hue",)
    return RunConfig(
        data=data, set_a=SetSpec(inactive=inactive), set_b=SetSpec(inactive=inactive),
        model=ModelConfig(encoder="mnist", embedding_dim=TINY.content_dim),
        train=TrainConfig(method="lord", lr=1e-3, steps=steps, checkpoint_every=3,
                          snapshot_every=3, probe_size=50, seed=seed, set_size=8),
        params=TINY,
    )


def test_class_id_is_the_mixed_radix_number_of_the_class_factors():
    sizes = (10, 3, 4, 5)
    f = np.array([[7, 2, 3, 4], [1, 0, 0, 0], [9, 1, 2, 0]])
    # columns 1 and 3 (sizes 3 and 5): id = f1 * 5 + f3
    assert lord.class_ids(f, sizes, [1, 3]).tolist() == [2 * 5 + 4, 0, 1 * 5 + 0]
    # columns 0, 2, 3: id = (f0 * 4 + f2) * 5 + f3
    assert lord.class_ids(f, sizes, [0, 2, 3]).tolist() == [(7 * 4 + 3) * 5 + 4, (1 * 4 + 0) * 5 + 0, (9 * 4 + 2) * 5 + 0]


def test_noise_only_in_training_and_the_content_penalty():
    model = lord.LordModel(TINY, n_train=10, n_classes=3, in_channels=1, size=16)
    pos = torch.arange(10)
    model.eval()
    noisy, clean = lord.content_codes(model, pos, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, clean) and torch.equal(clean, model.content.weight[pos])
    model.train()
    big = lord.LordModel(dataclasses.replace(TINY, content_dim=500), 10, 3, 1, 16).train()
    noisy, clean = lord.content_codes(big, pos, 2.0, torch.Generator().manual_seed(0))
    assert abs(float((noisy - clean).detach().std()) - 2.0) < 0.05  # N(0, 2^2) on the content code
    again, _ = lord.content_codes(big, pos, 2.0, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)  # the noise comes from the passed generator
    c = torch.tensor([[1.0, 2.0], [0.0, 3.0]])  # squared norms 5 and 9, mean 7
    assert float(lord.content_penalty(c, 0.1)) == pytest.approx(0.7)


def test_adain_sets_each_channel_mean_and_std():
    x = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]], [[0.0, 0.0], [0.0, 2.0]]]])  # (1, 2, 2, 2)
    scale, bias = torch.tensor([[2.0, 0.5]]), torch.tensor([[1.0, -3.0]])
    y = lord.adain(x, scale, bias, eps=0.0)
    mean, std = y.mean(dim=(2, 3)), y.std(dim=(2, 3), unbiased=False)
    assert torch.allclose(mean, bias) and torch.allclose(std, scale)
    # channel 0: values 1,3,5,7 (mean 4, std sqrt 5) -> (v - 4) / sqrt 5 * 2 + 1
    assert torch.allclose(y[0, 0].flatten(), (torch.tensor([1.0, 3, 5, 7]) - 4) / 5**0.5 * 2 + 1)


def test_multiscale_l1_on_hand_made_images():
    a = torch.zeros(1, 1, 4, 4)
    b = torch.zeros(1, 1, 4, 4)
    b[0, 0, 0, 0] = 1.0  # one pixel: 1/16 at full scale, 1/4 / 4 at 1/2, 1/16 at 1/4
    assert float(lord.multiscale_l1(b, a)) == pytest.approx(1 / 16 + (0.25 / 4) + 1 / 16)
    c = torch.ones(1, 1, 4, 4)  # uniform offset 1: 1 at every level
    assert float(lord.multiscale_l1(c, a)) == pytest.approx(3.0)
    assert float(lord.multiscale_l1(a, a)) == 0.0


def test_check_needs_a_class_and_validate_the_dimensions():
    from acc_core import data

    cfg = tiny_config()
    ds = data.load_for(cfg.data)
    with pytest.raises(ValueError, match="LORD needs a class"):
        lord.METHOD.check(cfg.replace(set_a=SetSpec(inactive=())), ds)
    lord.METHOD.check(cfg, ds)
    with pytest.raises(ValueError, match="embedding_dim"):
        validate(cfg.replace(model=ModelConfig(encoder="mnist", embedding_dim=7)))


def test_the_training_subset_skips_held_out_values_and_the_presets_validate():
    cfg = tiny_config().replace(params=dataclasses.replace(TINY, train_images=10_000))
    from acc_core import data

    ds = data.load_for(cfg.data)
    subset, classes = lord.training_subset(cfg, ds)
    assert (ds.factors(subset)[:, 0] != 9).all() and (classes == ds.factors(subset)[:, 0]).all()
    assert len(subset) == int((ds.factors(np.arange(len(ds)))[:, 0] != 9).sum())
    for name in ("quick", "paper"):
        for source in ("shapes3d-procedural", "digits"):
            validate(preset(name, source, method="lord"))


def test_tiny_run_writes_both_codes_and_a_model_eval(tmp_path):
    cfg = tiny_config("shapes3d-procedural", steps=6)
    assert train_mod.train(cfg, tmp_path, device="cpu")["status"] == "done"
    assert rundir.snapshot_steps(tmp_path) == [0, 3, 6]
    snap = rundir.load_snapshot(tmp_path, 6)
    content = rundir.snapshot_codes(snap, "content", lord.METHOD.representations)
    klass = rundir.snapshot_codes(snap, "class", lord.METHOD.representations)
    assert content.shape == (50, 4) and klass.shape == (50, 4)
    assert np.isfinite(content).all() and np.isfinite(klass).all()
    log = rundir.read_log(tmp_path)
    assert [r["stage"] for r in log] == [1, 1, 1, 2, 2, 2]
    ev = rundir.read_model_eval(tmp_path)
    s = ev["scores"]
    assert {"content_transfer_mse", "baseline_content_donor_mse", "baseline_class_donor_mse"} <= set(s)
    grid = ev["images"]["transfer_grid"]
    assert grid.dtype == np.uint8 and grid.shape == (7, 7, 16, 16, 3)
    assert ev["images"]["transfer_truth"].shape == grid.shape


def test_training_is_deterministic_on_digits_with_a_held_out_class(tmp_path):
    cfg = tiny_config("digits", steps=4, seed=5)
    train_mod.train(cfg, tmp_path / "a", device="cpu")
    train_mod.train(cfg, tmp_path / "b", device="cpu")
    w1 = rundir.load_checkpoint(tmp_path / "a" / rundir.CHECKPOINT)["model"]
    w2 = rundir.load_checkpoint(tmp_path / "b" / rundir.CHECKPOINT)["model"]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    ev = rundir.read_model_eval(tmp_path / "a")
    assert "content_transfer_mse" not in ev["scores"]  # no true transfer image for digits
    grid = ev["images"]["transfer_grid"]
    assert grid.shape[1:] == (7, 28, 28, 1) and grid.shape[0] >= 2

"""The mixing autoencoder (acc_core.methods.mixing, seed 003): mask mixing and unmixing on
hand-made tensors, the losses' known values, the gradient routing of its one-step GAN, the
networks at every image side, the nearest-neighbour mAP against brute force, and the
evaluation a finished run caches."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from acc_core.analysis.nn_map import average_precision, chance_map, chunk_factor_map, mean_average_precision
from acc_core.config import preset, validate
from acc_core.methods import mixing
from acc_core.nets_mixing import MixingModel, padded_side

torch.set_num_threads(min(2, torch.get_num_threads()))


# ----- mixing and unmixing -----------------------------------------------------------------------
def test_mix_takes_each_chunk_from_the_image_the_mask_names():
    # 3 chunks of 2: f1 = 1..6, f2 = -1..-6
    f1 = torch.arange(1.0, 7.0)[None]
    f2 = -f1
    mask = torch.tensor([[1.0, 0.0, 1.0]])  # chunk 0 and 2 from f1, chunk 1 from f2
    assert mixing.chunk_mask(mask, 2).tolist() == [[1, 1, 0, 0, 1, 1]]
    assert mixing.mix(f1, f2, mask, 2).tolist() == [[1, 2, -3, -4, 5, 6]]


def test_unmix_puts_the_first_images_chunks_back():
    f1 = torch.tensor([[1.0, 2, 3, 4]])  # 2 chunks of 2
    f2 = torch.tensor([[10.0, 20, 30, 40]])
    mask = torch.tensor([[0.0, 1.0]])  # chunk 0 from f2, chunk 1 from f1
    f12 = mixing.mix(f1, f2, mask, 2)
    assert f12.tolist() == [[10, 20, 3, 4]]
    f3 = f12 + 0.5  # a re-encoding that moved every value a little
    # keep f3 where the chunk came from f1 (chunk 1), put f1 back where it came from f2
    assert mixing.unmix(f3, f1, mask, 2).tolist() == [[1, 2, 3.5, 4.5]]
    # a perfect cycle (f3 == f12) returns f1 exactly, whatever the mask
    for m in ([0.0, 0.0], [1.0, 0.0], [1.0, 1.0]):
        mk = torch.tensor([m])
        assert torch.equal(mixing.unmix(mixing.mix(f1, f2, mk, 2), f1, mk, 2), f1)


def test_masks_are_uniform_and_one_per_batch_repeats_a_row():
    gen = torch.Generator().manual_seed(0)
    m = mixing.draw_mask(gen, 4000, 8, False)
    assert m.shape == (4000, 8) and set(m.unique().tolist()) == {0.0, 1.0}
    assert abs(m.mean().item() - 0.5) < 0.02
    one = mixing.draw_mask(torch.Generator().manual_seed(1), 5, 8, True)
    assert (one == one[:1]).all()


def test_losses_known_values():
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.full((2, 1, 2, 2), 0.5)
    # per image: 4 pixels x 0.25 = 1 ("sum"), 0.25 ("mean")
    assert mixing.squared_error(x_hat, x, "sum").item() == pytest.approx(1.0)
    assert mixing.squared_error(x_hat, x, "mean").item() == pytest.approx(0.25)
    # Eq. 3 with the sign fixed: y = sigmoid(0) = 1/2 for every chunk -> log 2 each
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert mixing.chunk_bce(torch.zeros(1, 3), mask, "sum").item() == pytest.approx(3 * math.log(2))
    # confident and right: small; confident and wrong: large (the printed Eq. 3 would reward
    # predicting y = 1 for every chunk whatever the mask)
    right = mixing.chunk_bce(torch.tensor([[9.0, -9.0, 9.0]]), mask, "sum").item()
    wrong = mixing.chunk_bce(torch.tensor([[9.0, 9.0, 9.0]]), mask, "sum").item()
    assert right < 1e-3 and wrong == pytest.approx(9.0, abs=1e-3)


def tiny_model(size=16, width=4):
    torch.manual_seed(0)
    return MixingModel(3, size, mixing.CHUNKS, 2, width, (4, 4, 4, 4, 4), 8)


def test_gan_gradients_go_where_each_player_wants():
    """One backward: the discriminator learns from its own loss only, the autoencoder from L_G
    through frozen discriminator weights; the classifier is cooperative."""
    model = tiny_model()
    p = mixing.MixingParams(chunk_size=2, mix_weight=0.0, classifier_weight=0.0,
                            reconstruction_weight=1.0)
    x1, x2 = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    mask = mixing.draw_mask(torch.Generator().manual_seed(0), 4, mixing.CHUNKS, False)
    loss, terms = mixing.mixing_loss(model, x1, x2, mask, p)
    loss.backward()
    d_grad = [q.grad.clone() for q in model.discriminator.parameters()]
    # the discriminator's gradient is exactly that of its own loss, L_D (x3 detached)
    model.zero_grad()
    f = model.encoder(torch.cat([x1, x2]))
    x3 = model.decoder(mixing.mix(f[:4], f[4:], mask, 2)).detach()
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    real, fake = model.discriminator(x1), model.discriminator(x3)
    (bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))).backward()
    for a, q in zip(d_grad, model.discriminator.parameters()):
        torch.testing.assert_close(a, q.grad)
    assert terms["gan_generator"] > 0 and "mixing" not in terms
    # and L_G alone sends gradient to the decoder but none to the discriminator
    model.zero_grad()
    fooled = mixing.frozen_call(model.discriminator, model.decoder(f[:4].detach()))
    bce(fooled, torch.ones_like(fooled)).backward()
    assert all(q.grad is None for q in model.discriminator.parameters())
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in model.decoder.parameters())


def test_ablations_drop_their_networks():
    model = tiny_model()
    x1, x2 = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    mask = torch.ones(2, mixing.CHUNKS)
    base = mixing.MixingParams(chunk_size=2)
    for name, change in mixing.ABLATIONS.items():
        model.zero_grad()
        loss, terms = mixing.mixing_loss(model, x1, x2, mask, dataclasses.replace(base, **change))
        loss.backward()
        used_d = any(q.grad is not None for q in model.discriminator.parameters())
        used_c = any(q.grad is not None for q in model.classifier.parameters())
        assert used_d == used_c == (name == "MIX+C+G"), name
        assert ("mixing" in terms) == (name != "AE") and ("reconstruction" in terms) == (name == "AE")


@pytest.mark.parametrize("size", [28, 32, 64])
def test_networks_keep_the_image_size(size):
    assert padded_side(size) == {28: 32, 32: 32, 64: 64}[size]
    model = tiny_model(size).eval()
    x = torch.rand(2, 3, size, size)
    f = model.encoder(x)
    assert f.shape == (2, mixing.CHUNKS * 2)
    out = model.decoder(f)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert model.discriminator(x).shape == (2,)
    assert model.classifier(torch.cat([x, x, x], 1)).shape == (2, mixing.CHUNKS)


def test_quick_and_paper_presets_and_bad_params():
    for source in ("shapes3d-procedural", "digits"):
        for name in ("quick", "paper"):
            validate(preset(name, source, method="mixing"))
    cfg = preset("quick", "shapes3d-procedural", method="mixing")
    assert cfg.method.supervision == "none" and "ignores the scenario" in cfg.method.supervision_text(cfg)
    with pytest.raises(ValueError, match="8 chunks"):
        validate(cfg.replace(model=dataclasses.replace(cfg.model, embedding_dim=10)))
    with pytest.raises(ValueError, match="nothing would train the decoder"):
        validate(cfg.replace(params=dataclasses.replace(cfg.params, mix_weight=0.0)))
    with pytest.raises(ValueError, match="unknown reduction"):
        validate(cfg.replace(params=dataclasses.replace(cfg.params, reduction="max")))
    validate(cfg.replace(params=dataclasses.replace(cfg.params, **mixing.REFERENCE)))


# ----- nearest-neighbour mean average precision -------------------------------------------------------
def brute_force_map(codes, labels):
    n = len(codes)
    aps = []
    for q in range(n):
        d = ((codes - codes[q]) ** 2).sum(1)
        others = [i for i in np.argsort(d, kind="stable") if i != q]
        rel = [labels[i] == labels[q] for i in others]
        if not any(rel):
            continue
        hits, precisions = 0, []
        for r, ok in enumerate(rel, start=1):
            if ok:
                hits += 1
                precisions.append(hits / r)
        aps.append(np.mean(precisions))
    return float(np.mean(aps))


def test_average_precision_by_hand():
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2; one at rank 4: 1/4; none: NaN
    got = average_precision(np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], bool))
    assert got[:2].tolist() == pytest.approx([5 / 6, 0.25]) and np.isnan(got[2])


def test_map_matches_brute_force_and_known_extremes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(60, 2))
    codes = rng.normal(size=(60, 4))
    got = mean_average_precision(codes, labels)
    assert got.tolist() == pytest.approx([brute_force_map(codes, labels[:, k]) for k in range(2)])
    # a code that is the factor itself retrieves it perfectly
    assert mean_average_precision(labels[:, :1].astype(float), labels[:, :1])[0] == pytest.approx(1.0)
    # random codes score the chance mAP (the expectation of a random ranking) on average
    many = rng.integers(0, 4, size=(400, 1))
    random = np.mean([mean_average_precision(rng.normal(size=(400, 3)), many)[0] for _ in range(5)])
    assert random == pytest.approx(chance_map(many)[0], abs=0.01)
    assert chance_map(many)[0] == pytest.approx(0.25, abs=0.02)  # four equal classes


def test_chunk_map_finds_the_chunk_that_holds_a_factor():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, size=(200, 2))
    codes = rng.normal(size=(200, 8 * 2))
    codes[:, 6:8] = labels[:, [0]] * 3.0  # chunk 3 holds factor 0
    codes[:, 14] = labels[:, 1] * 3.0  # chunk 7 holds factor 1
    m = chunk_factor_map(codes, labels, 8)
    assert m.shape == (8, 2) and m[:, 0].argmax() == 3 and m[:, 1].argmax() == 7
    assert m[3, 0] == pytest.approx(1.0) and m[0, 0] < 0.4
    with pytest.raises(ValueError, match="does not split"):
        chunk_factor_map(codes[:, :15], labels, 8)


# ----- the cached evaluation ------------------------------------------------------------------------------
def test_swap_grid_cells_decode_a_with_chunk_i_from_b():
    from acc_core.methods.mixing_eval import swap_cells, swap_grid

    model = tiny_model().eval()
    xa, xb = torch.rand(2, 3, 16, 16), torch.rand(3, 3, 16, 16)
    cells = swap_cells(model, xa, xb, mixing.CHUNKS, 2)
    assert cells.shape == (mixing.CHUNKS, 2, 3, 16, 16, 3) and cells.dtype == np.uint8
    with torch.no_grad():
        fa, fb = model.encoder(xa), model.encoder(xb)
        f = fa[1].clone()
        f[10:12] = fb[2, 10:12]  # chunk 5 of B's image 2 into A's image 1
        want = (model.decoder(f[None])[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(cells[5, 1, 2], want)
    u8 = lambda x: (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # noqa: E731
    grid = swap_grid({"chunk_swap": cells, "chunk_swap_a": u8(xa), "chunk_swap_b": u8(xb)}, 5)
    assert grid.shape == (3, 4, 16, 16, 3)
    np.testing.assert_array_equal(grid[2, 3], want)
    np.testing.assert_array_equal(grid[1:, 0], u8(xa))
    np.testing.assert_array_equal(grid[0, 1:], u8(xb))
    assert not grid[0, 0].any()  # the blank corner


def test_a_finished_run_caches_the_chunk_matrix_and_swap_grids(tmp_path, acc_home):
    from acc_core import rundir
    from acc_core.methods.mixing_eval import best_chunks
    from acc_core.train import train

    cfg = preset("quick", "digits", method="mixing")
    cfg = cfg.replace(params=dataclasses.replace(cfg.params, batch_size=8), train=dataclasses.replace(
        cfg.train, steps=2, snapshot_every=2, checkpoint_every=2, probe_size=40))
    assert train(cfg, tmp_path / "run", device="cpu")["status"] == "done"
    ev = rundir.read_model_eval(tmp_path / "run")
    s = ev["scores"]
    assert list(s["map_chunk"]) == [f"chunk{i}" for i in range(mixing.CHUNKS)]
    assert set(s["map_chunk"]["chunk0"]) == {"digit"} and 0 < s["map_chance"]["digit"] < 0.2
    assert s["map_best_chunk"]["digit"] == max(r["digit"] for r in s["map_chunk"].values())
    assert best_chunks(s)["digit"] in s["map_chunk"]
    assert ev["images"]["chunk_swap"].shape == (mixing.CHUNKS, mixing.SWAP_DONORS,
                                                mixing.SWAP_DONORS, 28, 28, 1)
    assert ev["images"]["chunk_swap_a"].shape == (mixing.SWAP_DONORS, 28, 28, 1)

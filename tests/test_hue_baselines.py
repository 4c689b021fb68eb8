"""The two hue double-augmentation baselines of the ACC paper's Figure 3c (bottom): ours
(`hue_infonce`) and the reference code's (`hue_infonce_ref`), and the report's labels."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from acc_core import augment, methods
from acc_core.config import preset

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _colourful(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 4, 4, generator=g) * 0.8 + 0.1  # saturated enough to have a hue


def _hue_change(before, after):
    return ((augment.rgb_to_hsv(after)[:, 0] - augment.rgb_to_hsv(before)[:, 0]) % 1.0)  # (B, H, W)


def test_one_hue_shift_for_the_whole_stack():
    x = _colourful()
    d = _hue_change(x, augment.hue_shift_batch(x, torch.Generator().manual_seed(1)))
    assert torch.allclose(d, d.flatten()[0].expand_as(d), atol=1e-4)  # one delta, every image
    per_image = _hue_change(x, augment.hue_shift(x, torch.Generator().manual_seed(1)))
    assert per_image[:, 0, 0].std() > 0.05  # ours: a delta per image
    grey = torch.full((2, 1, 4, 4), 0.5)
    assert torch.equal(augment.hue_shift_batch(grey, None), grey)


def test_reference_presets_are_the_reference_codes_flags():
    m = methods.get("hue_infonce_ref")
    assert m.name in methods.names() and m.supervision == "none"
    paper = preset("paper", "shapes3d-procedural", method="hue_infonce_ref")
    t = paper.train
    assert (t.similarity, t.temperature, t.lr, t.steps, t.set_size) == ("l2sq", 1.0, 3e-5, 2000, 32)
    assert paper.set_a.inactive == () and paper.set_b.inactive == () and t.augmentations == ("hue",)
    assert m.length_scale(paper, "embedding") == 1.0
    quick = preset("quick", "shapes3d-procedural", method="hue_infonce_ref")
    ours = preset("quick", "shapes3d-procedural", method="hue_infonce")
    assert quick.train.lr == ours.train.lr and quick.train.steps == ours.train.steps
    assert (ours.train.similarity, ours.train.temperature) == ("cosine", 0.1)


def test_reference_loss_is_one_direction_l2sq_over_one_stack():
    cfg = preset("quick", "shapes3d-procedural", method="hue_infonce_ref")
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, set_size=6))
    m = cfg.method
    from acc_core import data

    batch = m.batcher(cfg, data.load_for(cfg.data))(np.random.default_rng(0), 1)
    assert batch["indices"].shape == (1, 6)  # one stack, not two sets
    x = _colourful(6)[None]  # (P, S, C, H, W)
    model = torch.nn.Flatten()
    loss, _ = m.loss(model, {"x": x, "indices": batch["indices"]}, cfg, torch.Generator().manual_seed(3), 1)
    g = torch.Generator().manual_seed(3)
    z1 = augment.hue_shift_batch(x[0], g).flatten(1)
    z2 = augment.hue_shift_batch(x[0], g).flatten(1)
    logits = -torch.cdist(z1, z2) ** 2  # l2sq at tau = 1
    assert torch.allclose(loss, F.cross_entropy(logits, torch.arange(6)), atol=1e-4)


def test_reference_trains(acc_home):
    from acc_core.train import train
    from tests.conftest import tiny_shapes_config

    base = tiny_shapes_config(steps=4)
    ref = preset("quick", "shapes3d-procedural", method="hue_infonce_ref")
    cfg = base.replace(set_a=ref.set_a, set_b=ref.set_b,
                       train=dataclasses.replace(base.train, method="hue_infonce_ref",
                                                 augmentations=("hue",), similarity="l2sq", temperature=1.0))
    out = train(cfg, acc_home / cfg.run_id)
    assert out["step"] == 4
    losses = [json.loads(l)["loss"] for l in (acc_home / cfg.run_id / "log.jsonl").read_text().splitlines()]
    assert losses and np.isfinite(losses).all()


def test_the_report_names_each_rows_own_length_scale():
    sys.path.insert(0, str(DOCS))
    import make_reproduction as mr

    infonce = preset("quick", "shapes3d-procedural", method="hue_infonce")
    row = {"sigma": 0.4472, "scale_rule": mr._scale_rule(infonce)}
    assert mr._measured_at(row) == " (σ = √(2τ) = 0.45 at τ = 0.1)"
    acc = preset("quick", "shapes3d-procedural")
    assert mr._measured_at({"sigma": 1.0, "scale_rule": mr._scale_rule(acc)}) == ""


def test_the_baselines_table_fills_only_its_markers(tmp_path):
    sys.path.insert(0, str(DOCS))
    import make_hue_baselines as hb

    f = {k: {"mean": 0.1, "sd": 0.01, "n": 5} for k in ("final_mi", "final_agreement", "initial_agreement",
                                                           "final_probe", "mi_quarter_radius")}
    row = {"title": "x", "method": "m", "seeds": 5, "similarity": "l2sq", "temperature": 1.0, "sigma": 1.0,
           "rms_radius_trained": {"mean": 2.0}, "rms_radius_per_seed": [2.0],
           "factors": {n: {**f, "entropy": 2.3, "agreement_chance": 0.1, "probe_chance": 0.1}
                       for n in hb.FACTORS}}
    body = hb.markdown([row])
    assert "| x | 5 | l2sq, τ = 1 | √τ = 1.00 | 0.10 ± 0.01" in body and hb.SWEEP in body
    doc = tmp_path / "R.md"
    doc.write_text("a\n<!-- table: keep -->\nT\n<!-- /table -->\n<!-- hue-baselines -->\nold\n<!-- /hue-baselines -->\nz\n")
    assert hb.fill(doc, body)
    text = doc.read_text()
    assert "old" not in text and body in text and "<!-- table: keep -->\nT\n" in text


"""Seed 004's invariance evaluation (section 4.1, Table 1), computed once when a run ends.

Table 1 trains on part of the nuisance values and tests on the rest: on 3dShapes "object
shape (4 classes) as the prediction task and only half of object colors during training and
the remaining half of object color is used to evaluate"; on Colored-MNIST three new
background colours. Here those splits are the run's held-out values (`INVARIANCE`: shape as
the class with object hues 5-9 held out; `digits-colored` with backgrounds 3-5 held out), so
any scenario is scored the same way:

- `accuracy_unseen`: the run's own classifier (on the posterior mean of z_p) predicting the
  class on images whose class values were trained but some other factor has a held-out value;
  `worst_group_accuracy_unseen`: the lowest accuracy over the groups (class value x held-out
  factor values) of those images (Sagawa et al. 2020, as the paper cites);
- `accuracy_seen`, `worst_group_accuracy_seen`: the same on images with no held-out value
  (groups: class value x the trained values of those factors);
- an image grid: decoded [z_p of the row's image, z_n of the column's image] (the class should
  follow the row, everything else the column).
"""

from __future__ import annotations

import numpy as np
import torch

EVAL_SEED = 2_022_004
EVAL_IMAGES = 2000  # per split (seen / unseen)
GRID = 4  # donors per side of the transfer grid


def _groups_accuracy(pred: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> tuple[float, float, int]:
    """(mean accuracy, worst group's accuracy, number of groups)."""
    correct = pred == truth
    keys, inverse = np.unique(groups, axis=0, return_inverse=True)
    per = np.bincount(inverse.ravel(), weights=correct, minlength=len(keys)) / np.bincount(inverse.ravel())
    return float(correct.mean()), float(per.min()), int(len(keys))


@torch.no_grad()
def _predict(model, x: torch.Tensor, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(class predictions (n,), posterior means (n, L))."""
    preds, means = [], []
    for i in range(0, len(x), chunk):
        mu = model.vae.encode(x[i:i + chunk])[0]
        preds.append(model.classifier(mu[:, :model.predictive_dim]).argmax(1).cpu())
        means.append(mu.cpu())
    return torch.cat(preds).numpy(), torch.cat(means).numpy()


def _to_uint8(logits: torch.Tensor) -> np.ndarray:
    return (torch.sigmoid(logits.float()) * 255).round().to(torch.uint8).movedim(1, -1).cpu().numpy()


def evaluate(model, config, dataset, device) -> dict:
    from acc_core import data as data_sources
    from acc_core.methods.lord import class_ids
    from acc_core.methods.mixing_eval import display_levels
    from acc_core.sets import _normalise_held_out
    from acc_core.train import to_tensor

    split = data_sources.eval_split(config.data)
    ds = dataset if split == "train" else data_sources.load_for(config.data, split)
    f = ds.factors(np.arange(len(ds)))  # (N, K)
    cls_names = set(config.set_a.inactive)
    cls_cols = [i for i, n in enumerate(ds.factor_names) if n in cls_names]
    held = _normalise_held_out(ds, dict(config.data.held_out))
    held_mask = {ds.factor_index(n): np.isin(f[:, ds.factor_index(n)], v) for n, v in held.items()}
    class_ok = np.ones(len(f), bool)
    for c in cls_cols:
        class_ok &= ~held_mask.get(c, np.zeros(len(f), bool))  # a held-out class cannot be predicted
    nuisance_held = [c for c in held_mask if c not in cls_cols]
    unseen = np.zeros(len(f), bool)
    for c in nuisance_held:
        unseen |= held_mask[c]
    rng = np.random.default_rng(EVAL_SEED)
    scores: dict = {}
    for name, pool in (("seen", class_ok & ~unseen), ("unseen", class_ok & unseen)):
        candidates = np.flatnonzero(pool)
        if not len(candidates):
            continue
        idx = np.sort(rng.choice(candidates, size=min(EVAL_IMAGES, len(candidates)), replace=False))
        pred, _ = _predict(model, to_tensor(ds.images(idx), config.data.image_size, device))
        truth = class_ids(f[idx], ds.factor_sizes, cls_cols)
        groups = np.concatenate([truth[:, None], f[idx][:, nuisance_held]], axis=1)
        mean, worst, n_groups = _groups_accuracy(pred, truth, groups)
        scores.update({f"accuracy_{name}": mean, f"worst_group_accuracy_{name}": worst,
                       f"groups_{name}": float(n_groups), f"images_{name}": float(len(idx))})
    # the transfer grid: rows give z_p (class donors of distinct classes), columns give z_n
    allowed = np.flatnonzero(class_ok & ~unseen)
    order = rng.permutation(allowed)
    cls = class_ids(f[order], ds.factor_sizes, cls_cols)
    _, first = np.unique(cls, return_index=True)
    rows = order[np.sort(first)[:GRID]] if len(first) >= 2 else order[:GRID]
    cols = rng.choice(allowed, size=min(GRID, len(allowed)), replace=False)
    xr = to_tensor(ds.images(rows), config.data.image_size, device)
    xc = to_tensor(ds.images(cols), config.data.image_size, device)
    with torch.no_grad():
        mr, mc = model.vae.encode(xr)[0], model.vae.encode(xc)[0]
        dp, R, C = model.predictive_dim, len(rows), len(cols)
        z = torch.cat([mr[:, None, :dp].expand(R, C, dp), mc[None, :, dp:].expand(R, C, mc.shape[1] - dp)], 2)
        cells = _to_uint8(model.vae.decode(z.reshape(R * C, -1)))
    h, w, ch = cells.shape[1:]
    grid = np.zeros((R + 1, C + 1, h, w, ch), np.uint8)
    grid[1:, 1:] = display_levels(cells.reshape(R, C, h, w, ch))  # 16 levels: display only
    grid[1:, 0] = (xr * 255).round().to(torch.uint8).movedim(1, -1).cpu().numpy()
    grid[0, 1:] = (xc * 255).round().to(torch.uint8).movedim(1, -1).cpu().numpy()
    return {"scores": scores, "images": {"zp_transfer_grid": grid}}


def invariance_scenarios() -> dict:
    """Table 1's two splits as rci quick runs: name -> (RunConfig, description)."""
    import dataclasses

    from acc_core.config import SetSpec, preset

    out = {}
    for name, source, cls, held, desc in (
        ("shapes3d-invariance-rci", "shapes3d-procedural", ("shape",), {"object_hue": (5, 6, 7, 8, 9)},
         "Table 1, 3dShapes: predict shape, object hues 0-4 trained, 5-9 tested"),
        ("digits-colored-invariance-rci", "digits-colored", ("digit",), {"background_color": (3, 4, 5)},
         "Table 1, Colored-MNIST (from digits): backgrounds 0-2 trained, 3-5 tested"),
    ):
        cfg = preset("quick", source, method="rci")
        out[name] = (cfg.replace(set_a=SetSpec(inactive=cls), set_b=SetSpec(inactive=cls),
                                 data=dataclasses.replace(cfg.data, held_out=held)), desc)
    return out


INVARIANCE = invariance_scenarios  # the runs behind docs/REPRODUCTION.md's Table 1 rows

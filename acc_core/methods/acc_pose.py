"""ACC for pose transfer from synthetic to real images (the ACC paper section 4.3, appendix A.3;
the ABC supplement S5 and S8.3), on the `pose-procedural` source.

Supervision: sets, and no pose label ever reaches the ACC loss. Set A is synthetic and
grouped by object instance (category, instance and domain fixed: viewpoint is the only active
factor); set B is unconstrained: synthetic images of every instance and viewpoint, with
unlabelled real-domain images folded in. As in section 4.3, B is purely synthetic for the
first half of training and then holds 5.5% real images (`titration="step"`); the S8.3 option
ramps the fraction linearly from 0 to 10% over training in stages (`titration="linear"`).
Only the training instances (0-9) are drawn; instances 10-11 are the held-out test objects.

Cosine similarity, τ = 0.1, several set pairs per step, double augmentation with the S5
augmentations that fit this data: translated crops, brightness/contrast, hue, per-pixel
Gaussian noise, an added Sobel image, and the synthetic images' plain background replaced by
a crop of a real-domain cluttered background (S5 paints ImageNet-A crops).

Table 2 (`regression_weight` > 0): a spherical-regression head (Liao et al. 2019;
`acc_core.spherical_regression`) on the L2-normalised embeddings, trained with the synthetic
images' poses, summed with `acc_weight` times the ACC loss; `acc_weight=0` is the regression
alone, the supervised reference trained on synthetic images only.

Network: the paper's Table S5 puts a conv 256 3x3 ReLU, global average pooling, dense 128
tanh and a dense 64-D embedding on an ImageNet-pretrained ResNet50 (up to conv4_block6) at
128x128. No pretrained weights can be downloaded here, so a small conv trunk trained from
scratch at 64x64 replaces the ResNet, with a flattened 4x4 map instead of the global pooling
(see `PoseEncoder` for why); the dense 128 tanh and 64-D embedding follow Table S5.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from acc_core.methods.base import Method

TITRATIONS = ("step", "linear")
ENCODER = "pose_small"


@dataclass(frozen=True)
class PoseParams:
    categories: tuple[str, ...] = ("car", "chair")  # one network for both (the paper: one each)
    real_fraction: float = 0.055  # section 4.3: "real images are factored in as 5.5% of each set B"
    titration: str = "step"  # "step": from `real_start` on; "linear": S8.3's ramp to real_fraction
    real_start: float = 0.5  # fraction of training before any real image ("step")
    titration_every: int = 0  # "linear": the fraction rises in stages of this many steps (0: every step)
    acc_weight: float = 1.0  # 0: no ACC loss (the regression alone, Table 2's first row)
    regression_weight: float = 0.0  # > 0: the spherical-regression head on synthetic poses (Table 2)
    # S5: synthetic backgrounds painted with real-domain backgrounds. True: from the start;
    # a number in (0, 1): from that fraction of training on (see `_quick`); False: never.
    background_swap: bool | float = True
    # The share of synthetic images painted rises linearly from 0 to 1 over this fraction of
    # training from where the swap starts (0: every synthetic image from the start; see `_quick`).
    swap_ramp: float = 0.0
    lr_halve_every: int = 0  # S8.3: "decays by a factor of 2 every 10k steps" (0: constant)


# ----- the network ----------------------------------------------------------------------------
class PoseEncoder(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, E): a small conv trunk in place of the ResNet50, then
    Table S5's head: dense 128 tanh, dense E linear.

    Table S5 pools the ResNet's features globally; from scratch, pooled features of a fresh
    network are nearly the same for every image (cosine 0.999 between any two), which puts the
    τ = 0.1 loss on its plateau of log(set size). A last stride-2 conv and a flattened 4x4 map
    (at 64x64) keep where things are in the frame, and inputs are centred on 0.5: the fresh
    network's embeddings then start at cosine ~0.9.
    """

    def __init__(self, embedding_dim: int = 64, width: int = 32, image_size: int = 64):
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            nn.Conv2d(3, w, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),  # Table S5's conv (256 there)
            nn.Flatten(),
        )
        side = image_size
        for _ in range(4):
            side = (side + 1) // 2  # each stride-2 conv with padding halves, rounding up
        self.feature_dim = 4 * w * side * side
        self.head = nn.Sequential(nn.Linear(self.feature_dim, 128), nn.Tanh(),
                                  nn.Linear(128, embedding_dim))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x - 0.5)  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))  # (B, E)


class PoseModel(nn.Module):
    """The encoder and the spherical-regression head: one module, one checkpoint."""

    def __init__(self, embedding_dim: int, image_size: int = 64):
        from acc_core.spherical_regression import SphericalRegressionHead

        super().__init__()
        self.encoder = PoseEncoder(embedding_dim, image_size=image_size)
        self.regression = SphericalRegressionHead(embedding_dim, n_angles=2)

    def forward(self, x):
        return self.encoder(x)


class HalvingAdam(torch.optim.Adam):
    """Adam whose lr halves every `every` steps (S8.3); the step count lives in Adam's own
    state, so a resumed run continues the schedule."""

    def __init__(self, params, lr, every: int, **kw):
        super().__init__(params, lr=lr, **kw)
        self.every = every
        for g in self.param_groups:
            g.setdefault("base_lr", lr)

    def step(self, closure=None):
        states = [self.state[p] for g in self.param_groups for p in g["params"] if p in self.state]
        done = int(states[0]["step"]) if states else 0  # optimiser steps already taken
        for g in self.param_groups:
            g["lr"] = g["base_lr"] * 0.5 ** (done // self.every)
        return super().step(closure)


# ----- real-image titration -------------------------------------------------------------------
def real_fraction_at(params: PoseParams, step: int, steps: int) -> float:
    """The fraction of set B drawn from the real domain at optimiser step `step` (1-based)."""
    if params.titration == "step":
        return params.real_fraction if step > params.real_start * steps else 0.0
    start = params.real_start * steps
    s = step if params.titration_every <= 0 else (step // params.titration_every) * params.titration_every
    return params.real_fraction * float(np.clip((s - start) / max(steps - start, 1), 0.0, 1.0))


def swap_share(params: PoseParams, step: int, steps: int) -> float:
    """The share of synthetic images whose background step `step` (1-based) paints
    (PoseParams.background_swap, swap_ramp): 0 before the swap starts, then rising linearly to 1
    over `swap_ramp` of training."""
    b = params.background_swap
    if b is False:
        return 0.0
    start = 0.0 if b is True else float(b) * steps
    if step <= start and b is not True:
        return 0.0
    ramp = params.swap_ramp * steps
    return 1.0 if ramp <= 0 else float(min(1.0, (step - start) / ramp))


def pose_batcher(config, dataset):
    """(rng, step) -> {"indices": (2, P, S), "synthetic": (2, P, S) bool, "angles": (2, P, S, 2)}.

    Angles are the synthetic images' (azimuth, elevation); they are zero for real images and
    only ever reach the regression head (never the ACC loss)."""
    from acc_core.data.pose_procedural import DICTIONARY_INSTANCES

    p, t = config.params, config.train
    cats = np.asarray([dataset.value_labels[0].index(c) for c in p.categories], dtype=np.int64)
    inst = np.asarray(DICTIONARY_INSTANCES, dtype=np.int64)
    n_az, n_el = dataset.factor_sizes[2], dataset.factor_sizes[3]
    n_views = n_az * n_el
    S, P = t.set_size, t.pairs_per_step

    def index(cat, ins, view, domain):  # the grid's index arithmetic, domain fastest
        return (((cat * dataset.factor_sizes[1] + ins) * n_views + view) * 2 + domain).astype(np.int64)

    def draw(rng: np.random.Generator, step: int) -> dict:
        # set A: one (category, instance) per set, S distinct synthetic viewpoints
        cat_a = cats[rng.integers(len(cats), size=P)]
        ins_a = inst[rng.integers(len(inst), size=P)]
        view_a = np.argsort(rng.random((P, n_views)), axis=1)[:, :S]
        idx_a = index(cat_a[:, None], ins_a[:, None], view_a, 0)
        # set B: S distinct (category, instance, viewpoint) combinations; some of them real
        pool = len(cats) * len(inst) * n_views
        combo = np.argsort(rng.random((P, pool)), axis=1)[:, :S]
        cat_b = cats[combo // (len(inst) * n_views)]
        ins_b = inst[(combo // n_views) % len(inst)]
        frac = real_fraction_at(p, step, t.steps)
        n_real = np.floor(frac * S + rng.random(P)).astype(np.int64)  # mean frac * S per set
        real_b = np.arange(S)[None, :] < n_real[:, None]  # (P, S)
        idx_b = index(cat_b, ins_b, combo % n_views, real_b.astype(np.int64))
        idx = np.stack([idx_a, idx_b])  # (2, P, S)
        synthetic = np.stack([np.ones_like(real_b), ~real_b])
        out = {"indices": idx, "synthetic": synthetic}
        if p.regression_weight > 0:
            angles = dataset.poses(idx.ravel()).reshape(*idx.shape, 2).astype(np.float32)
            out["angles"] = np.where(synthetic[..., None], angles, 0.0).astype(np.float32)
        return out

    return draw


# ----- augmentation -------------------------------------------------------------------------------
def swap_backgrounds(x: torch.Tensor, synthetic: torch.Tensor, gen, share: float = 1.0) -> torch.Tensor:
    """S5: paint the plain background of synthetic images (B, 3, H, W) with a random crop of a
    real-domain cluttered background; real images (synthetic False) are left as they are. With
    `share` < 1 each synthetic image is painted with that probability."""
    from acc_core.data.pose_render import BACKGROUND_SYNTHETIC, _banks

    bsz, _, h, w = x.shape
    bgs, _ = _banks(h)  # (BANK, 3, 2h, 2h)
    u = torch.rand(bsz, 4, generator=gen)
    pick = (u[:, 0] * len(bgs)).long()
    rows = (u[:, 1] * h).long()[:, None] + torch.arange(h)[None]  # (B, h)
    cols = (u[:, 2] * w).long()[:, None] + torch.arange(w)[None]
    bg = bgs[pick[:, None, None, None], torch.arange(3)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :]].to(x.device, x.dtype)
    plain = ((x - BACKGROUND_SYNTHETIC).abs() < 0.02).all(1, keepdim=True)  # (B, 1, H, W)
    painted = synthetic.to(x.device) & (u[:, 3] < share).to(x.device)
    plain &= painted.view(-1, 1, 1, 1)
    return torch.where(plain, bg, x)


class ACCPose(Method):
    name = "acc_pose"
    title = "ACC for pose transfer (synthetic to real)"
    paper = "seed 000 (ACC), section 4.3, appendix A.3; the ABC supplement S5, S8.3"
    supervision = "sets"
    params = PoseParams
    representations = ("embedding",)
    uses_similarity = True

    def supervision_text(self, config) -> str:
        p = config.params
        real = (f"{p.real_fraction:.1%} real images from {p.real_start:.0%} of training on"
                if p.titration == "step" else f"real images ramped linearly up to {p.real_fraction:.1%}")
        text = (f"Sets of {config.train.set_size} images: set A is synthetic and holds one object "
                f"instance (its viewpoint varies); set B is unconstrained with {real}; no pose "
                "label reaches the ACC loss.")
        if p.regression_weight > 0:
            text += " A spherical-regression head learns the synthetic images' poses."
        if p.acc_weight == 0:
            text = ("Synthetic images with their poses train the spherical-regression head alone "
                    "(no ACC loss, no real image).")
        return text

    def validate(self, config) -> None:
        p = config.params
        bad = [c for c in p.categories if c not in ("car", "chair")]
        if bad or not p.categories:
            raise ValueError(f"categories must be a non-empty subset of car, chair, got {p.categories}")
        if p.titration not in TITRATIONS:
            raise ValueError(f"unknown titration {p.titration!r}; valid: {', '.join(TITRATIONS)}")
        if not 0 <= p.real_fraction <= 1 or not 0 <= p.real_start < 1:
            raise ValueError("real_fraction must be in 0..1 and real_start in 0..1 (exclusive)")
        if p.acc_weight < 0 or p.regression_weight < 0 or p.acc_weight + p.regression_weight == 0:
            raise ValueError("acc_weight and regression_weight must be >= 0, and not both 0")
        b = p.background_swap
        if not isinstance(b, bool) and not 0 < b < 1:
            raise ValueError(f"background_swap is True, False or a fraction of training in (0, 1), got {b!r}")
        if not 0 <= p.swap_ramp < 1:
            raise ValueError(f"swap_ramp is a fraction of training in [0, 1), got {p.swap_ramp!r}")
        if config.model.encoder != ENCODER:
            raise ValueError(f"acc_pose builds its own encoder; set model.encoder to {ENCODER!r}")

    def check(self, config, dataset) -> None:
        if dataset.name != "pose-procedural":
            raise ValueError("acc_pose needs the pose-procedural data source "
                             "(`acc train --data pose-procedural`)")
        if config.train.set_size > dataset.factor_sizes[2] * dataset.factor_sizes[3]:
            raise ValueError(f"set size {config.train.set_size} > the {dataset.factor_sizes[2] * dataset.factor_sizes[3]} "
                             "viewpoints of one instance; use a smaller set")

    def presets(self, name: str, source: str):
        return {"paper": _paper, "quick": _quick}[name](source)

    def build(self, config, dataset) -> torch.nn.Module:
        return PoseModel(config.model.embedding_dim, config.data.image_size or dataset.image_shape[0])

    def optimizer(self, model, config):
        every = config.params.lr_halve_every
        if every > 0:
            return HalvingAdam(model.parameters(), lr=config.train.lr, every=every, betas=(0.9, 0.999))
        return super().optimizer(model, config)

    def batcher(self, config, dataset):
        return pose_batcher(config, dataset)

    def loss(self, model, batch, config, gen, step):
        from acc_core import augment, losses
        from acc_core.spherical_regression import spherical_regression_loss

        t, p = config.train, config.params
        x = batch["x"]  # (2, P, S, C, H, W)
        _, P, S = x.shape[:3]
        x = x.flatten(0, 2)
        synthetic = batch["synthetic"].flatten()  # (2 * P * S,)
        n_views = 2 if (t.double_augmentation and p.acc_weight > 0) else 1

        share = swap_share(p, step, t.steps)

        def view(images):
            if share > 0:
                images = swap_backgrounds(images, synthetic, gen, share)
            if t.augmentations:
                images = augment.apply(images, t.augmentations, gen)
            return images

        views = torch.cat([view(x) for _ in range(n_views)])
        z = model.encoder(views.contiguous(memory_format=torch.channels_last)).float()
        z = z.view(n_views, 2, P, S, -1)  # (view, set, P, S, E)
        start, target = z[0], z[-1]
        total, terms = 0.0, {"real_fraction": real_fraction_at(p, step, t.steps)}
        if p.acc_weight > 0:
            kw = dict(similarity=t.similarity, temperature=t.temperature)
            acc = 0.0
            for i in range(P):
                a, b = start[0, i], start[1, i]
                acc = acc + losses.acc_loss(a, b, a_target=target[0, i], **kw)
                acc = acc + losses.acc_loss(b, a, a_target=target[1, i], **kw)
            acc = acc / (2 * P)
            total = total + p.acc_weight * acc
            terms["acc"] = float(acc.detach())
        if p.regression_weight > 0:
            keep = synthetic.to(z.device)
            mag, quad = model.regression(start.reshape(-1, start.shape[-1])[keep])
            reg, parts = spherical_regression_loss(mag, quad, batch["angles"].reshape(-1, 2)[keep])
            total = total + p.regression_weight * reg
            terms.update(regression=float(reg.detach()), **parts)
        return total, terms

    def encode(self, model, x, representation):
        return model.encoder(x.contiguous(memory_format=torch.channels_last))

    def length_scale(self, config, representation):
        from acc_core.losses import loss_length_scale

        return loss_length_scale(config.train.similarity, config.train.temperature)

    def retrieval_similarity(self, config, representation):
        return config.train.similarity  # cosine in the presets

    def unit_vectors(self, config, representation):
        return config.train.similarity == "cosine"

    def evaluate_model(self, model, config, dataset, device) -> dict:
        from acc_core.methods.acc_pose_eval import evaluate

        return evaluate(model, config, dataset, device)


# ----- presets --------------------------------------------------------------------------------
AUGMENTATIONS = ("crop", "brightness_contrast", "hue", "gaussian_noise", "sobel")


def _paper(source: str):
    """S8.3 (lookup): 40k steps, lr 1e-4 halving every 10k, 4 pairs of sets of 32, cosine,
    τ = 0.1, real images ramped linearly to 10% in stages of 4k steps; 64-D embeddings. The
    small encoder replaces the ImageNet ResNet50 (no pretrained weights offline)."""
    from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig

    return RunConfig(
        data=DataConfig(source="pose-procedural", image_size=64),
        set_a=SetSpec(inactive=("category", "instance", "domain")),
        set_b=SetSpec(inactive=()),
        model=ModelConfig(encoder=ENCODER, embedding_dim=64),
        train=TrainConfig(method="acc_pose", similarity="cosine", temperature=0.1, set_size=32,
                          pairs_per_step=4, lr=1e-4, steps=40_000, augmentations=AUGMENTATIONS,
                          double_augmentation=True, checkpoint_every=1000, snapshot_every=2000,
                          probe_size=1000),
        params=PoseParams(real_fraction=0.10, titration="linear", real_start=0.0,
                          titration_every=4000, lr_halve_every=10_000),
    )


def _quick(source: str):
    """Section 4.3's schedule (5.5% real from half-way) in a run of about 100 s on 2 CPU
    cores: 2 pairs of sets per step, a larger constant lr, 800 steps, bf16 autocast where the
    CPU or GPU computes it natively (float32 elsewhere, about 1.5x slower).

    S5's background swap is ramped in: the share of synthetic images whose plain background is
    painted with a real-domain one rises linearly from 0 to 1 over the first half of training.
    Switched on for every image from the first step, a network trained from scratch mostly
    collapses to one embedding for every image (the loss stays at log(set size) = 3.466 to
    the end in 2 of the 3 seeds of the report's swap-ramp sweep); a pretrained ResNet, as in
    the paper, starts from features that tell objects apart, ours does not. Without the swap
    the network learns the synthetic domain but its lookup of real-domain images stays near
    chance (the background-swap sweep; both in docs/REPRODUCTION.md, "Pose transfer").

    Measured on a quiet 2-core CPU with native bf16: 107 s for the whole `acc train --method
    acc_pose --data pose-procedural` (rendering, 800 steps, snapshots, evaluation; load 1.0 ->
    1.7); `python benchmarks/bench_pose_train.py` times the steps on any machine (0.129 s a
    step in bf16, 0.189 in float32 there, `benchmarks/results/bench_pose_train*.json`)."""
    cfg = _paper(source)
    return cfg.replace(
        train=dataclasses.replace(cfg.train, pairs_per_step=2, lr=3e-4, steps=800,
                                  checkpoint_every=100, snapshot_every=100, probe_size=500,
                                  precision="bfloat16"),
        params=PoseParams(background_swap=True, swap_ramp=0.5),
    )


METHOD = ACCPose()

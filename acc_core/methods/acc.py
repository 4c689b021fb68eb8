"""ACC: affinity cycle consistency (seed 000, section 3; the ABC supplement S8).

Supervision: sets. Set A and set B each hold their inactive factors at one random value per
set; the loss (`acc_core.losses.acc_loss`, both directions) asks each a_i to come back to
itself through its soft nearest neighbour in B. One network; one representation,
`embedding`. Presets: `paper` = the ABC supplement S8.1 (Shapes3D, Table S3 at 64x64) and
S8.2 (MNIST/digits, Table S4, digit 9 held out); `quick` = the same network at 48x48 with its
output layer scaled to start at the loss's length scale, in fewer, larger steps, in bfloat16
where the hardware has it (README, "Presets"); `RECIPES` also holds the former quick preset,
`quick-300`, and `quick-float32`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from acc_core.methods.base import Method, Sentence


def _paper(source: str):
    from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig

    if source.startswith("shapes3d"):
        # the ABC supplement S8.1: Table S3, 2000 steps, lr 3e-5, set size 32, l2sq, tau = 1, 64-D.
        return RunConfig(
            data=DataConfig(source=source),
            set_a=SetSpec(inactive=("wall_hue",)),
            set_b=SetSpec(inactive=("wall_hue",)),
            model=ModelConfig(encoder="shapes3d", embedding_dim=64),
            train=TrainConfig(lr=3e-5, steps=2000, set_size=32),
        )
    # the ABC supplement S8.2: Table S4, 500 steps, lr 1e-4, set size 64, l2sq, tau = 1, 8-D, 9 held out.
    return RunConfig(
        data=DataConfig(source=source, held_out={"digit": (9,)}),
        set_a=SetSpec(inactive=("digit",)),
        set_b=SetSpec(inactive=("digit",)),
        model=ModelConfig(encoder="mnist", embedding_dim=8),
        train=TrainConfig(lr=1e-4, steps=500, set_size=64, checkpoint_every=100, snapshot_every=100),
    )


def _quick_300(source: str):
    """The former quick preset, kept for the ablation (docs/REPRODUCTION.md) and the InfoNCE
    baseline's runs: 32x32 renders, 300 steps at lr 3e-4, the papers' Glorot output layer.
    ACC runs of it stay on the loss's initial plateau when all three hues are inactive."""
    from acc_core.config import DataConfig

    cfg = _paper(source)
    if source.startswith("shapes3d"):
        # 32x32 renders (the Table S3 network at 32x32) and a larger learning rate.
        return cfg.replace(
            data=DataConfig(source=source, image_size=32),
            train=dataclasses.replace(
                cfg.train, lr=3e-4, steps=300, checkpoint_every=50, snapshot_every=25, probe_size=1000
            ),
        )
    return cfg.replace(
        train=dataclasses.replace(cfg.train, lr=3e-4, steps=200, snapshot_every=25, probe_size=1000)
    )


# The quick Shapes3D recipe's departures from the papers' (README, "Presets"), chosen on the
# scenario with all three hues inactive (docs/REPRODUCTION.md, "Quick recipe ablation"):
# 48x48 renders: at 32x32 shape and scale information fade again with more steps; a 48x48
# step costs about 2.5 times a 32x32 one and a third of a 64x64 one.
QUICK_IMAGE_SIZE = 48
# Untrained embeddings of the Table S3 network have RMS radius 0.06-0.08 around their mean,
# far inside the length scale sqrt(tau) = 1, where every affinity is alike and the loss sits
# on its log(set size) plateau for hundreds of steps; this gain on the output layer's initial
# weights starts them near 1 (0.9-0.95 at 48x48).
QUICK_OUTPUT_GAIN = 14.0
# 600 steps: with 450 scale appeared in three seeds of five (0.15-0.55 nats), with 600 in all
# five (0.33-0.65); 43 s a whole run on a quiet 2-core AMX CPU in bf16 (bench_acc_recipes.json).
QUICK_STEPS = 600
QUICK_LR = 3e-4  # 1e-3 (warm-up 50, cosine decay) lost scale and shape at 32x32
# bfloat16 autocast where the CPU or GPU computes it natively (TrainConfig.precision): a
# step of this recipe takes a third of its float32 time on an AMX CPU; float32 elsewhere.
QUICK_PRECISION = "bfloat16"


def _quick(source: str):
    cfg = _quick_300(source)
    if source.startswith("shapes3d"):
        return cfg.replace(
            data=dataclasses.replace(cfg.data, image_size=QUICK_IMAGE_SIZE),
            model=dataclasses.replace(cfg.model, output_gain=QUICK_OUTPUT_GAIN),
            train=dataclasses.replace(cfg.train, lr=QUICK_LR, steps=QUICK_STEPS,
                                      checkpoint_every=50, snapshot_every=50,
                                      precision=QUICK_PRECISION),
        )
    return cfg


def _quick_float32(source: str):
    """The quick recipe computed in float32 throughout (the ablation of its bfloat16)."""
    cfg = _quick(source)
    return cfg.replace(train=dataclasses.replace(cfg.train, precision="float32"))


# Every named Shapes3D/digits recipe of ACC: the presets, the former quick preset, and the
# quick preset in float32 (docs/REPRODUCTION.md, "Quick recipe ablation").
RECIPES = {"paper": _paper, "quick": _quick, "quick-300": _quick_300,
           "quick-float32": _quick_float32}


def set_batcher(config, dataset):
    """(rng, step) -> {"indices": (2, P, S)}: P pairs of sets A and B, drawn by their samplers."""
    from acc_core.sets import SetSampler

    t = config.train
    held_out = dict(config.data.held_out)
    sampler_a = SetSampler(dataset, config.set_a.inactive, t.set_size, held_out=held_out)
    sampler_b = SetSampler(dataset, config.set_b.inactive, t.set_size, held_out=held_out)

    def draw(rng: np.random.Generator, step: int) -> dict:
        idx_a = sampler_a.sample(rng, t.pairs_per_step)  # (P, S)
        idx_b = sampler_b.sample(rng, t.pairs_per_step)
        return {"indices": np.stack([idx_a, idx_b])}  # (2, P, S)

    return draw


def check_sets(config, dataset) -> None:
    from acc_core.sets import validate_sets

    for spec in (config.set_a, config.set_b):
        validate_sets(dataset, spec.inactive, config.train.set_size, dict(config.data.held_out))


def build_encoder_for(config, dataset) -> torch.nn.Module:
    from acc_core.models import build_encoder

    h, _, c = dataset.image_shape
    model = build_encoder(config.model.encoder, config.model.embedding_dim, in_channels=c,
                          image_size=config.data.image_size or h)
    if config.model.output_gain != 1.0:
        # Start the embeddings near the loss's length scale instead of on its plateau
        # (ModelConfig.output_gain); only the initial weights change, not the architecture.
        with torch.no_grad():
            model.head[-1].weight.mul_(config.model.output_gain)
    return model


class ACC(Method):
    name = "acc"
    title = "ACC (affinity cycle consistency)"
    paper = "seed 000 (ACC), section 3; the ABC supplement S8"
    supervision = "sets"
    representations = ("embedding",)
    uses_similarity = True

    def supervision_text(self, config) -> str:
        a = Sentence.factors(config.set_a.inactive)
        b = ("B is unconstrained (a random sample)" if not config.set_b.inactive
             else f"set B holds {Sentence.factors(config.set_b.inactive)} fixed")
        return (f"Sets of {config.train.set_size} images: set A holds {a} fixed within a set, "
                f"{b}; the cycle A -> B -> A must come back.")

    def check(self, config, dataset) -> None:
        check_sets(config, dataset)

    def presets(self, name: str, source: str):
        return {"paper": _paper, "quick": _quick}[name](source)

    def build(self, config, dataset) -> torch.nn.Module:
        return build_encoder_for(config, dataset)

    def batcher(self, config, dataset):
        return set_batcher(config, dataset)

    def loss(self, model, batch, config, gen, step):
        from acc_core import augment, losses

        t = config.train
        x = batch["x"]  # (2, P, S, C, H, W)
        _, P, S = x.shape[:3]
        x = x.flatten(0, 2).contiguous(memory_format=torch.channels_last)  # one forward for all
        kw = dict(similarity=t.similarity, temperature=t.temperature)
        if t.double_augmentation:
            # The cycle starts from one augmentation of a_i and must return to another one.
            v1, v2 = augment.apply(x, t.augmentations, gen), augment.apply(x, t.augmentations, gen)
            z = model(torch.cat([v1, v2])).float().view(2, 2, P, S, -1)  # (view, set, P, S, E)
            start, target = z[0], z[1]
        else:
            if t.augmentations:
                x = augment.apply(x, t.augmentations, gen)
            start = target = model(x).float().view(2, P, S, -1)  # (set, P, S, E)
        total = 0.0
        for p in range(P):
            a, b = start[0, p], start[1, p]
            total = total + losses.acc_loss(a, b, a_target=target[0, p], **kw)
            total = total + losses.acc_loss(b, a, a_target=target[1, p], **kw)
        return total / (2 * P), {}

    def encode(self, model, x, representation):
        return model(x.contiguous(memory_format=torch.channels_last))

    def length_scale(self, config, representation):
        from acc_core.losses import loss_length_scale

        return loss_length_scale(config.train.similarity, config.train.temperature)

    def retrieval_similarity(self, config, representation):
        return config.train.similarity

    def unit_vectors(self, config, representation):
        return config.train.similarity == "cosine"

    def validate(self, config) -> None:
        pass


METHOD = ACC()

"""The contrastive baseline of seed 000, Figure 3c (bottom): InfoNCE between two hue
augmentations of the same images (double augmentation without set supervision).

Supervision: none (the scenario's sets only decide which images are drawn; the positives
are the two views of one image). Its sets are drawn like ACC's, so the images a step sees
are the same as an ACC run's with the same scenario.
"""

from __future__ import annotations

import dataclasses

import torch

from acc_core.methods.acc import ACC, _quick_300, _paper


def _hue_baseline_preset(name: str, source: str, method: str, similarity: str, temperature: float):
    """A hue double-augmentation baseline's preset: ACC's recipe of that name with no inactive
    factor, hue augmentation, and the baseline's similarity and temperature. `quick` is the
    former ACC quick recipe (`quick-300`, no output gain): the shipped runs keep their ids."""
    cfg = {"paper": _paper, "quick": _quick_300}[name](source)
    return cfg.replace(set_a=dataclasses.replace(cfg.set_a, inactive=()),
                       set_b=dataclasses.replace(cfg.set_b, inactive=()),
                       train=dataclasses.replace(cfg.train, method=method, augmentations=("hue",),
                                                 similarity=similarity, temperature=temperature))


class HueInfoNCE(ACC):
    name = "hue_infonce"
    title = "Baseline: InfoNCE on two hue augmentations"
    paper = "seed 000 (ACC), Figure 3c bottom"
    supervision = "none"

    def supervision_text(self, config) -> str:
        return ("No set supervision: each image is its own class; two random hue shifts of it "
                "are the positive pair (InfoNCE), every other image a negative.")

    def presets(self, name: str, source: str):
        # seed 000 section 4.1: the hue double-augmentation baseline, cosine with tau 0.1
        return _hue_baseline_preset(name, source, self.name, "cosine", 0.1)

    def loss(self, model, batch, config, gen, step):
        from acc_core import augment, losses

        t = config.train
        x = batch["x"].flatten(0, 2).contiguous(memory_format=torch.channels_last)  # (2PS, C, H, W)
        # Two hue augmentations of the same images; positives are the two views.
        names = ("hue",) + tuple(a for a in t.augmentations if a != "hue")
        v1 = augment.apply(x, names, gen)
        v2 = augment.apply(x, names, gen)
        z = model(torch.cat([v1, v2])).float()  # (2 * 2PS, E)
        z1, z2 = z.chunk(2)
        return losses.info_nce(z1, z2, similarity=t.similarity, temperature=t.temperature), {}


METHOD = HueInfoNCE()


class HueAugmentationReference(ACC):
    """The hue double-augmentation baseline as the ACC paper's reference code trains it
    (`isolating_factors/shapes3d/train.py`, flag `run_augmentation_experiment`): one
    unconstrained stack of `set_size` images per step, augmented twice by ONE random hue
    rotation each (`tf.image.random_hue` on the whole stack), and the cross-entropy of
    softmax(sim(z1_i, z2_j) / tau) against j = i, one direction, with the ACC run's own
    similarity and temperature (squared L2, tau = 1). `hue_infonce` differs on purpose: a
    hue rotation per image, a symmetric loss, cosine similarity at tau = 0.1."""

    name = "hue_infonce_ref"
    title = "Baseline: the reference code's hue double augmentation (one hue shift per stack)"
    paper = "seed 000 (ACC), Figure 3c bottom, as its reference code trains it"
    supervision = "none"

    def supervision_text(self, config) -> str:
        return ("No set supervision: one random stack of images is hue-shifted twice, by one "
                "random amount per copy; each image's two copies are the positive pair, the "
                "stack's other images the negatives.")

    def presets(self, name: str, source: str):
        # The reference code's flags: its ACC recipe (lr 3e-5, 2000 steps, stack size 32,
        # l2sq, tau = 1, 64-D) with no inactive factor; `quick` = ACC's quick recipe.
        return _hue_baseline_preset(name, source, self.name, "l2sq", 1.0)

    def batcher(self, config, dataset):
        from acc_core.sets import SetSampler

        t = config.train
        sampler = SetSampler(dataset, (), t.set_size, held_out=dict(config.data.held_out))

        def draw(rng, step: int) -> dict:
            return {"indices": sampler.sample(rng, t.pairs_per_step)}  # (P, S): unconstrained stacks

        return draw

    def loss(self, model, batch, config, gen, step):
        from acc_core import augment, losses

        t = config.train
        x = batch["x"]  # (P, S, C, H, W)
        P, S = x.shape[:2]
        others = tuple(a for a in t.augmentations if a != "hue")
        views = []
        for p in range(P):
            stack = x[p].contiguous(memory_format=torch.channels_last)  # (S, C, H, W)
            for _ in range(2):  # two copies, each with its own single hue rotation
                v = augment.hue_shift_batch(stack, gen)
                views.append(augment.apply(v, others, gen) if others else v)
        z = model(torch.cat(views)).float().view(P, 2, S, -1)  # (P, view, S, E)
        total = 0.0
        for p in range(P):
            total = total + losses.info_nce(z[p, 0], z[p, 1], similarity=t.similarity,
                                            temperature=t.temperature, symmetric=False)
        return total / P, {}


METHODS = {m.name: m for m in (METHOD, HueAugmentationReference())}

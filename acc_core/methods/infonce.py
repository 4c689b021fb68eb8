"""The contrastive baseline of seed 000, Figure 3c (bottom): InfoNCE between two hue
augmentations of the same images (double augmentation without set supervision).

Supervision: none (the scenario's sets only decide which images are drawn; the positives
are the two views of one image). Its sets are drawn like ACC's, so the images a step sees
are the same as an ACC run's with the same scenario.
"""

from __future__ import annotations

import dataclasses

import torch

from acc_core.methods.acc import ACC, _quick, _paper


class HueInfoNCE(ACC):
    name = "hue_infonce"
    title = "Baseline: InfoNCE on two hue augmentations"
    paper = "seed 000 (ACC), Figure 3c bottom"
    supervision = "none"

    def supervision_text(self, config) -> str:
        return ("No set supervision: each image is its own class; two random hue shifts of it "
                "are the positive pair (InfoNCE), every other image a negative.")

    def presets(self, name: str, source: str):
        cfg = {"paper": _paper, "quick": _quick}[name](source)
        # seed 000 section 4.1: the hue double-augmentation baseline, cosine with tau 0.1
        return cfg.replace(set_a=dataclasses.replace(cfg.set_a, inactive=()),
                           set_b=dataclasses.replace(cfg.set_b, inactive=()),
                           train=dataclasses.replace(cfg.train, method=self.name, augmentations=("hue",),
                                                     similarity="cosine", temperature=0.1))

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

"""Reconstruction for disentanglement, contrast for invariance (seed 004, ICLR 2022
submission; no public code): a VAE whose code z = [z_p, z_n] splits into predictive and
nuisance parts, trained on pairs that differ in exactly k factors.

Section 3 and Eq. 10. A pair (x_l, x_m) shares the class (set A's inactive factors here) and
differs in exactly k of the active factors; only k is known (acc_core.methods.rci_parts).
- L_VAE: the ELBO of both images (Eq. 1; Bernoulli decoder, disentanglement_lib networks).
- Top-k swap (Eq. 3-5): per z_n dimension, the divergence of the pair's posteriors (closed-form
  KL or Jensen-Shannon); every dimension but the k most different is swapped, and z_p is
  exchanged too: z^(l) = [z_p(m), z_n(l) swapped], z^(m) = [z_p(l), z_n(m) swapped].
- L_dis (Eq. 6): their decodings must match the original reconstructions.
- L_Zp (Eq. 8): z_p resampled from its class-mean posterior, decoded with the image's own z_n,
  must match the reconstruction too.
- L_sup (Eq. 9): supervised contrastive loss on z_p, positives = same class.
- L_CE: a classifier on z_p, "trained separately" (section 4.1): it sees z_p detached.
- Warm-up by difficulty (k grows from 1) and by amount (swapped dimensions grow from 1 to
  |d_z| - k), section 3.2 and Figure 4.
L = L_CE + L_VAE + alpha L_dis + beta L_sup + gamma L_Zp. Evaluation (Table 1's invariance
task): `acc_core.methods.rci_eval`.

The paper gives no architecture, latent sizes, weights or schedules; every choice is listed in
`CHOICES` (shown by the report) with its reason.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acc_core.methods.base import Method, Sentence
from acc_core.methods.rci_parts import (DIVERGENCES, KFactorPairs, class_mean_posterior,
                                        supervised_contrastive, swap, topk_swap_mask)
from acc_core.nets_vae import GaussianVAE, bernoulli_reconstruction, kl_to_standard_normal, reparameterize

CHOICES: tuple[str, ...] = (
    "Networks: the disentanglement_lib convolutional VAE (acc_core.nets_vae), the base the "
    "paper's Table 3 baselines (Ada-GVAE, beta-VAE) were measured with.",
    "z_n has 10 dimensions (disentanglement_lib's latent size, so the top-k swap ranks as many "
    "dimensions as Ada-GVAE's threshold does) and z_p 4 (a small code for the class only).",
    "alpha, gamma and the KL weight are 1 (the plain sum of Eq. 10; no value is published); "
    "beta, the contrastive loss's weight, is 1,000: the other terms are Bernoulli "
    "log-likelihoods summed over about 3,000 pixel values per image, of order 10^3; with "
    "beta = 1 the contrastive term is a thousandth of the others and, in a trial run on Table "
    "1's Shapes3D split, z_p collapsed to the prior (its classifier at chance); with 1,000 the "
    "classifier is near perfect on the trained hues (docs/REPRODUCTION.md).",
    "D of Eq. 6 and 8 is the Bernoulli cross-entropy (summed over pixels, as the reconstruction) "
    "between the decoded swapped code and the image's reconstruction, detached: the "
    "reconstruction is the target, the swapped decoding moves towards it.",
    "The supervised contrastive loss uses L2-normalised posterior means of z_p and "
    "temperature 0.1 (Khosla et al. 2020's defaults).",
    "The classifier is a 64-unit MLP on the posterior mean of z_p, trained by cross-entropy on "
    "the detached code in the same step (the paper's 'separately trained' classifier).",
    "Warm-up: over the first half of training the largest k grows linearly from 1 to the number "
    "of changeable factors (each pair's k uniform up to it), and the number of swapped "
    "dimensions from 1 to |z_n| - k.",
    "Divergences are taken between the posteriors; the swap exchanges the sampled codes.",
    "Labelled data whose only labelled factor is the class (digits): k is unknown (0), no z_n "
    "dimension is swapped, and L_dis exchanges only z_p between two images of a class.",
    "Optimiser: Adam (0.9, 0.999), as disentanglement_lib; presets as the VAE methods here.",
)
DISTANCES = ("bce", "mse")
REPRESENTATIONS = ("z", "z_p", "z_n")


@dataclass(frozen=True)
class RciParams:
    predictive_dim: int = 4  # |z_p| (a choice: see CHOICES)
    nuisance_dim: int = 10  # |z_n|, disentanglement_lib's latent size
    beta: float = 1.0  # KL weight inside L_VAE (1 = the ELBO of Eq. 1)
    dis_weight: float = 1.0  # alpha of Eq. 10
    sup_weight: float = 1000.0  # beta of Eq. 10: of the reconstruction terms' order (CHOICES)
    zp_weight: float = 1.0  # gamma of Eq. 10
    temperature: float = 0.1  # of the supervised contrastive loss (Khosla et al.)
    divergence: str = "kl"  # "kl" (Eq. 3) or "js" (Eq. 4)
    distance: str = "bce"  # D of Eq. 6 and 8: "bce" or "mse"
    warmup_difficulty: bool = True  # k grows from 1 (Figure 4b)
    warmup_amount: bool = True  # swapped dimensions grow from 1 (Figure 4a)
    warmup_fraction: float = 0.5  # of the training steps
    batch_size: int = 64  # pairs per step (disentanglement_lib's weak methods: 64 pairs)
    classifier_hidden: int = 64

    @property
    def latent_dim(self) -> int:  # = embedding_dim: z_p first, then z_n
        return self.predictive_dim + self.nuisance_dim


class RciModel(nn.Module):
    """The VAE and the classifier on z_p as one module (the checkpoint's model)."""

    def __init__(self, p: RciParams, in_channels: int, image_size: int, n_classes: int):
        super().__init__()
        self.predictive_dim = p.predictive_dim
        self.vae = GaussianVAE(p.latent_dim, in_channels, image_size)
        self.classifier = nn.Sequential(nn.Linear(p.predictive_dim, p.classifier_hidden), nn.ReLU(),
                                        nn.Linear(p.classifier_hidden, n_classes))

    def forward(self, x):
        return self.vae.encode(x)[0]


def progress(config, step: int) -> float:
    """0 -> 1 over the warm-up (the first `warmup_fraction` of the steps), then 1."""
    span = config.params.warmup_fraction * config.train.steps
    return 1.0 if span <= 0 else min(1.0, step / span)


def schedule(config, step: int, max_k: int) -> tuple[int, int]:
    """(the largest k drawn, the most z_n dimensions swapped) at `step`."""
    p, t = config.params, progress(config, step)
    k_cap = 1 + math.floor((max_k - 1) * t) if p.warmup_difficulty else max_k
    n_cap = 1 + math.floor((p.nuisance_dim - 1) * t) if p.warmup_amount else p.nuisance_dim
    return max(1, k_cap), n_cap


def distance(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, C, H, W) logits against target probabilities -> (N,) summed over pixels."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none").flatten(1).sum(1)
    return (torch.sigmoid(logits.float()) - target).pow(2).flatten(1).sum(1)


def rci_loss(model: RciModel, x, k, n_swap, classes, p: RciParams, gen):
    """-> (loss, terms). x (2, B, C, H, W): rows x_l and x_m; k, n_swap, classes (B,)."""
    B, dp = x.shape[1], p.predictive_dim
    flat = x.flatten(0, 1)  # (2B, C, H, W)
    mu, logvar = model.vae.encode(flat)  # (2B, L) each
    z = reparameterize(mu, logvar, gen)
    logits = model.vae.decode(z)
    rec = bernoulli_reconstruction(logits, flat)  # (2B,)
    kl = kl_to_standard_normal(mu, logvar).sum(1)
    pair = lambda v: v.view(2, B).sum(0).mean()  # noqa: E731  (the pair's sum, mean over pairs)
    l_vae = pair(rec + p.beta * kl)
    target = torch.sigmoid(logits.float()).detach()
    with torch.no_grad():  # which dimensions to swap: a discrete choice
        div = DIVERGENCES[p.divergence](mu[:B, dp:], logvar[:B, dp:], mu[B:, dp:], logvar[B:, dp:])
        mask = topk_swap_mask(div, k, n_swap)  # (B, dn)
    zn_l, zn_m = swap(z[:B, dp:], z[B:, dp:], mask)
    z_hat = torch.cat([torch.cat([z[B:, :dp], zn_l], 1), torch.cat([z[:B, :dp], zn_m], 1)])
    l_dis = pair(distance(model.vae.decode(z_hat), target, p.distance))
    labels = classes.repeat(2)  # (2B,)
    mbar, lbar = class_mean_posterior(mu[:, :dp], logvar[:, :dp], labels)
    z_tilde = torch.cat([reparameterize(mbar, lbar, gen), z[:, dp:]], 1)
    l_zp = pair(distance(model.vae.decode(z_tilde), target, p.distance))
    l_sup = supervised_contrastive(mu[:, :dp], labels, p.temperature)
    class_logits = model.classifier(mu[:, :dp].detach())
    l_ce = F.cross_entropy(class_logits.float(), labels)
    loss = l_ce + l_vae + p.dis_weight * l_dis + p.sup_weight * l_sup + p.zp_weight * l_zp
    return loss, {"rec": float(rec.mean().detach()), "kl": float(kl.mean().detach()),
                  "dis": float(l_dis.detach()), "zp": float(l_zp.detach()), "sup": float(l_sup.detach()),
                  "ce": float(l_ce.detach()),
                  "class_accuracy": float((class_logits.argmax(1) == labels).float().mean()),
                  "swapped_dims": float(mask.float().sum(1).mean()), "k": float(k.float().mean())}


# ----- the method --------------------------------------------------------------------------------------
def _class_cols(config, dataset) -> list[int]:
    names = set(config.set_a.inactive)
    return [i for i, n in enumerate(dataset.factor_names) if n in names]


class Rci(Method):
    name = "rci"
    title = "Reconstruction + contrast (k-factor pairs, z = [z_p, z_n])"
    paper = "seed 004 (reconstruction for disentanglement, contrast for invariance), sections 3-4"
    supervision = "pairs"
    params = RciParams
    representations = REPRESENTATIONS
    uses_similarity = False

    def supervision_text(self, config) -> str:
        cls = Sentence.factors(config.set_a.inactive)
        return (f"Pairs of images sharing {cls} (the class z_p predicts) and differing in exactly "
                f"k of the other labelled factors, only k known (k and the swapped dimensions grow "
                f"during warm-up; with no other labelled factor k = 0); set B is ignored.")

    def check(self, config, dataset) -> None:
        if not config.set_a.inactive:
            raise ValueError("rci needs a class: mark at least one factor inactive in set A (its "
                             "values, combined, are the class z_p predicts, e.g. shape or digit)")
        pairs = KFactorPairs(dataset, config.set_a.inactive, dict(config.data.held_out))
        if dataset.is_grid and not pairs.max_k:
            raise ValueError("rci needs a factor that can change within a pair: leave at least one "
                             "factor active with two or more values not held out")

    def validate(self, config) -> None:
        from acc_core.methods.vae import ENCODER, _positive_int

        p = config.params
        for name in ("predictive_dim", "nuisance_dim", "batch_size", "classifier_hidden"):
            _positive_int(name, getattr(p, name))
        if config.model.encoder != ENCODER:
            raise ValueError(f"rci uses the {ENCODER!r} networks: set ModelConfig.encoder to {ENCODER!r}")
        if config.model.embedding_dim != p.latent_dim:
            raise ValueError(f"embedding dim {config.model.embedding_dim} must be predictive_dim + "
                             f"nuisance_dim = {p.latent_dim}")
        for name in ("beta", "dis_weight", "sup_weight", "zp_weight"):
            v = getattr(p, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"rci {name.replace('_', ' ')} must be a finite number >= 0, got {v!r}")
        if not p.temperature > 0:
            raise ValueError(f"rci temperature must be > 0, got {p.temperature}")
        if p.divergence not in DIVERGENCES:
            raise ValueError(f"unknown divergence {p.divergence!r}; valid: {', '.join(DIVERGENCES)}")
        if p.distance not in DISTANCES:
            raise ValueError(f"unknown distance {p.distance!r}; valid: {', '.join(DISTANCES)}")
        if not 0.0 <= p.warmup_fraction <= 1.0:
            raise ValueError(f"rci warmup fraction must be in [0, 1], got {p.warmup_fraction}")

    def presets(self, name: str, source: str):
        from acc_core.methods.vae import _paper_base, _quick_base

        if name == "paper":  # the VAE methods' disentanglement_lib defaults (vae._paper_base)
            return _paper_base(source, "rci", RciParams())
        if name == "quick":
            # 32 pairs (64 images) per step as the VAEs' quick presets, 800 steps: each step
            # decodes three times as many codes as a VAE step
            cfg = _quick_base(source, "rci", RciParams(batch_size=32), steps_shapes=800,
                              steps_digits=800)
            # a 400-image probe: three codes shipped for three scenarios within the size budget
            return cfg.replace(train=dataclasses.replace(cfg.train, probe_size=400))
        raise ValueError(f"unknown preset {name!r}; valid: paper, quick")

    # ----- training ---------------------------------------------------------------------------
    def build(self, config, dataset):
        from acc_core.methods.lord import num_classes

        h, _, c = dataset.image_shape
        return RciModel(config.params, c, config.data.image_size or h,
                        num_classes(dataset, _class_cols(config, dataset)))

    def batcher(self, config, dataset):
        from acc_core.methods.lord import class_ids

        pairs = KFactorPairs(dataset, config.set_a.inactive, dict(config.data.held_out))
        cols, b, dn = _class_cols(config, dataset), config.params.batch_size, config.params.nuisance_dim

        def draw(rng: np.random.Generator, step: int) -> dict:
            k_cap, n_cap = schedule(config, step, pairs.max_k)
            idx, k = pairs.sample(rng, b, k_cap)  # (2, B), (B,)
            n_swap = np.minimum(dn - k, n_cap) if pairs.max_k else np.zeros_like(k)
            classes = class_ids(dataset.factors(idx[0]), dataset.factor_sizes, cols)
            return {"indices": idx, "k": k, "n_swap": n_swap.astype(np.int64), "classes": classes}

        return draw

    def loss(self, model, batch, config, gen, step):
        return rci_loss(model, batch["x"], batch["k"], batch["n_swap"], batch["classes"],
                        config.params, gen)

    # ----- analysis ---------------------------------------------------------------------------
    def encode(self, model, x, representation):
        mu = model.vae.encode(x)[0]  # (B, L): posterior means
        dp = model.predictive_dim
        return {"z": mu, "z_p": mu[:, :dp], "z_n": mu[:, dp:]}[representation]

    def evaluate_model(self, model, config, dataset, device) -> dict:
        from acc_core.methods.rci_eval import evaluate

        return evaluate(model, config, dataset, device)


METHOD = Rci()

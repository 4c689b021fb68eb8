"""The mixing autoencoder (seed 003: Hu, Szabó, Portenier, Favaro, Zwicker 2018, "Disentangling
factors of variation by mixing them"), unsupervised.

Section 3.1, Figure 1, Eq. 1-4. The feature f = Enc(x) is 8 chunks of d dimensions. For two
independent images x1, x2 and a mask m in {0, 1}^8 (1 = the chunk comes from f1):
  mix      f12 = m * f1 + (1 - m) * f2,  x3 = Dec(f12)
  unmix    f3 = Enc(x3),  f31 = m * f3 + (1 - m) * f1,  x4 = Dec(f31)
  L_M      = |x4 - x1|^2                                   (Eq. 1, the invariance objective)
  L_G      a discriminator judges x1 (real) against x3    (Eq. 2)
  L_C      a classifier sees [x1, x2, x3] and predicts m per chunk with sigmoid outputs,
           -sum_i [m^i log y^i + (1 - m^i) log(1 - y^i)]  (Eq. 3 with its sign typo fixed:
           the paper prints log(y^i) twice); encoder and decoder minimise it with the
           classifier (cooperative: it stops chunks from being ignored, the shortcut problem)
  objective  min over Enc, Dec, Cls, max over Dsc of lambda_M L_M + lambda_G L_G + lambda_C L_C
           (Eq. 4), lambda = 1 (section 3.2, MNIST and Sprites), one random mask per pair.
Networks: acc_core.nets_mixing (Table 1). Evaluation (section 4, Table 2, Figures 2-3):
nearest-neighbour mAP per chunk and factor (acc_core.analysis.nn_map) and chunk-swap grids.

Scale of the terms: the paper writes squared norms and a sum over chunks, so by default
L_M is the per-image sum of squared pixel errors and L_C the sum of the 8 chunk BCEs, each
averaged over the batch (`reduction="sum"`). The reference code (HuQyang/Disentangling-
Factors-of-Variation-by-Mixing-Them, model_sprites.py) instead averages over pixels and
chunks and adds plain reconstruction terms: g_loss = 10 mean|Dec(f1) - x1|^2 + 10
mean|Dec(f2) - x2|^2 + 10 mean|x4 - x1|^2 + L_G + L_C; `REFERENCE` sets those options
(`dataclasses.replace(params, **REFERENCE)`). The ablations of Table 2 are weights:
MIX = gan_weight 0 and classifier_weight 0; AE = mix_weight 0, reconstruction_weight 1 and
no G or C (`ABLATIONS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from acc_core.methods.base import Method

CHUNKS = 8  # section 3.2: "We separate it into 8 chunks"
REPRESENTATIONS = ("code",) + tuple(f"chunk{i}" for i in range(CHUNKS))
REDUCTIONS = ("sum", "mean")
EVAL_SEED = 2_018_003  # the evaluation images and the chunk-swap donors
SWAP_DONORS = 3  # rows (image A) and columns (image B) of each chunk-swap grid

DEPARTURES: tuple[str, ...] = (
    "One optimiser step updates every network at once from the same batch (the discriminator "
    "from its own loss on a detached x3, the autoencoder from L_G through a frozen copy of the "
    "discriminator's weights); the reference code alternates three optimisers, each on a new "
    "batch.",
    "L_G for the autoencoder is the non-saturating -log D(x3) (the reference code's g_loss), "
    "not the log(1 - D(x3)) of Eq. 2.",
    "Networks at any image side: inputs zero-padded to 4 * 2^n, the decoder's output cropped "
    "back; decoder d(8w)k4 then n deconvolutions k4 s2 and a 3x3 convolution with a sigmoid "
    "(Table 1's MNIST decoder ends in d3k2; the reference ends in tanh).",
    "The classifier's AlexNet is used without its grouped convolutions, with padded pooling so "
    "32-px inputs fit; the quick presets narrow every network and use chunks of 4 dimensions "
    "(the paper: 8 on MNIST, 64 on Sprites).",
    "Adam (0.5, 0.999) at a constant learning rate; the reference decays it by 0.9 every 20,000 "
    "steps.",
    "The paper evaluates on Sprites (7 attributes); here on the Shapes3D and digit factors, "
    "over a fixed sample of 1,000 images.",
)


@dataclass(frozen=True)
class MixingParams:
    """The mixing autoencoder's own hyperparameters (part of the run's identity)."""

    chunk_size: int = 8  # section 3.2: "chunk size 8 for MNIST" (64 for Sprites and CelebA)
    width: int = 64  # Table 1: the first convolution's channels (then 128, 256, 512)
    classifier_channels: tuple = (96, 256, 384, 384, 256)  # Table 1: AlexNet's convolutions
    classifier_fc: int = 4096  # Table 1: f4096-f4096
    batch_size: int = 64  # pairs per step: the reference code's batch of 64
    mix_weight: float = 1.0  # lambda_M, section 3.2
    gan_weight: float = 1.0  # lambda_G
    classifier_weight: float = 1.0  # lambda_C
    reconstruction_weight: float = 0.0  # plain |Dec(f) - x|^2 on x1 and x2: 0 in the paper
    reduction: str = "sum"  # "sum": the paper's squared norms; "mean": the reference's means
    one_mask_per_batch: bool = False  # the reference code draws one mask per minibatch


REFERENCE = dict(reduction="mean", mix_weight=10.0, reconstruction_weight=10.0)
ABLATIONS = {  # Table 2's rows as parameter changes
    "MIX+C+G": {},
    "MIX": dict(gan_weight=0.0, classifier_weight=0.0),
    "AE": dict(mix_weight=0.0, gan_weight=0.0, classifier_weight=0.0, reconstruction_weight=1.0),
}


# ----- pure tensor functions (known answers in tests/test_mixing.py) -------------------------------
def chunk_mask(mask: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """(B, n) chunk mask -> (B, n * d) feature mask: m = [m^1 1, ..., m^n 1]."""
    return mask.repeat_interleave(chunk_size, dim=1)


def mix(f1: torch.Tensor, f2: torch.Tensor, mask: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """f12 = m * f1 + (1 - m) * f2: chunk i from f1 where mask[:, i] = 1, else from f2."""
    m = chunk_mask(mask.to(f1.dtype), chunk_size)
    return m * f1 + (1 - m) * f2


def unmix(f3: torch.Tensor, f1: torch.Tensor, mask: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """f31 = m * f3 + (1 - m) * f1: keep f3's chunks that came from f1, put f1's back elsewhere."""
    return mix(f3, f1, mask, chunk_size)


def draw_mask(gen: torch.Generator, n: int, chunks: int, one_per_batch: bool) -> torch.Tensor:
    """(n, chunks) float {0, 1}, uniform; one row shared by the batch if `one_per_batch`."""
    rows = 1 if one_per_batch else n
    m = torch.randint(0, 2, (rows, chunks), generator=gen).float()
    return m.expand(n, chunks) if one_per_batch else m


def squared_error(x_hat: torch.Tensor, x: torch.Tensor, reduction: str) -> torch.Tensor:
    """|x_hat - x|^2 per image summed over pixels ("sum") or averaged ("mean"), mean over B."""
    e = (x_hat.float() - x.float()).pow(2).flatten(1)
    return (e.sum(1) if reduction == "sum" else e.mean(1)).mean()


def chunk_bce(logits: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    """Eq. 3, sign fixed: -sum_i [m^i log y^i + (1 - m^i) log(1 - y^i)], y = sigmoid(logits),
    summed ("sum") or averaged ("mean") over the chunks, mean over the batch."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), mask.float(), reduction="none")
    return (bce.sum(1) if reduction == "sum" else bce.mean(1)).mean()


def frozen_call(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with its parameters detached: gradients reach x but not the module."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return torch.func.functional_call(module, params, (x,))


def mixing_loss(model, x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor, p: MixingParams):
    """-> (loss, terms). x1, x2 (B, C, H, W) in [0, 1]; mask (B, 8) with 1 = chunk from x1."""
    d, red = p.chunk_size, p.reduction
    B = x1.shape[0]
    f = model.encoder(torch.cat([x1, x2]))  # (2B, 8d): one forward for both
    f1, f2 = f[:B], f[B:]
    loss, terms = x1.new_zeros(()), {}
    if p.reconstruction_weight:
        rec = squared_error(model.decoder(f), torch.cat([x1, x2]), red) * 2  # x1 and x2
        loss = loss + p.reconstruction_weight * rec
        terms["reconstruction"] = float(rec.detach())
    if not (p.mix_weight or p.gan_weight or p.classifier_weight):
        return loss, terms
    x3 = model.decoder(mix(f1, f2, mask, d))  # (B, C, H, W)
    if p.mix_weight:
        x4 = model.decoder(unmix(model.encoder(x3), f1, mask, d))
        l_m = squared_error(x4, x1, red)
        loss = loss + p.mix_weight * l_m
        terms["mixing"] = float(l_m.detach())
    if p.gan_weight:
        real = model.discriminator(x1).float()
        fake = model.discriminator(x3.detach()).float()
        l_d = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
               + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        fooled = frozen_call(model.discriminator, x3).float()
        l_g = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
        loss = loss + p.gan_weight * (l_g + l_d)
        terms.update(gan_generator=float(l_g.detach()), gan_discriminator=float(l_d.detach()))
    if p.classifier_weight:
        logits = model.classifier(torch.cat([x1, x2, x3], dim=1))  # (B, 8)
        l_c = chunk_bce(logits, mask, red)
        loss = loss + p.classifier_weight * l_c
        terms["classifier"] = float(l_c.detach())
        terms["classifier_accuracy"] = float(((logits > 0).float() == mask).float().mean())
    return loss, terms


# ----- presets ---------------------------------------------------------------------------------------
def _paper(source: str):
    from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig

    p = MixingParams()
    # Table 1's networks and section 3.2's weights; Adam 2e-4 and batch 64 from the reference
    # code (the paper gives neither); 20,000 steps (the paper gives no length either).
    if source.startswith("shapes3d"):
        data, inactive, steps = DataConfig(source=source), ("wall_hue",), 20_000
    else:
        data, inactive, steps = DataConfig(source=source, held_out={"digit": (9,)}), ("digit",), 10_000
    return RunConfig(
        data=data, set_a=SetSpec(inactive=inactive), set_b=SetSpec(inactive=inactive),
        model=ModelConfig(encoder="mixing", embedding_dim=CHUNKS * p.chunk_size),
        train=TrainConfig(method="mixing", lr=2e-4, steps=steps, checkpoint_every=1000,
                          snapshot_every=2000, probe_size=2000),
        params=p)


QUICK = MixingParams(chunk_size=4, width=16, classifier_channels=(16, 32, 48, 48, 32),
                     classifier_fc=256, batch_size=16)


def _quick(source: str):
    from acc_core.config import DataConfig

    cfg = _paper(source)
    data = DataConfig(source=source, image_size=32) if source.startswith("shapes3d") else cfg.data
    # narrow networks, chunks of 4, 16 pairs per step, lr 1e-3, 800 steps (2 TFLOP, a sixth of
    # LORD's quick run); chunks of 4 and a 300-image probe keep the nine codes' shipped
    # snapshots small (the chunk x factor matrix ranks its own 1,000 images).
    return cfg.replace(data=data, params=QUICK,
                       model=dataclasses.replace(cfg.model, embedding_dim=CHUNKS * QUICK.chunk_size),
                       train=dataclasses.replace(cfg.train, lr=1e-3, steps=800, checkpoint_every=100,
                                                 snapshot_every=100, probe_size=300))


# ----- the method --------------------------------------------------------------------------------------
class Mixing(Method):
    name = "mixing"
    title = "Mixing autoencoder (unsupervised chunks)"
    paper = "seed 003 (Hu et al. 2018), section 3, Table 1"
    supervision = "none"
    params = MixingParams
    representations = REPRESENTATIONS
    uses_similarity = False

    def supervision_text(self, config) -> str:
        return (f"Unsupervised: it ignores the scenario's sets and mixes the {CHUNKS} feature "
                f"chunks of {config.params.batch_size} pairs of random images per step "
                "(held-out values never drawn).")

    def check(self, config, dataset) -> None:
        from acc_core.sets import validate_sets

        validate_sets(dataset, (), 2 * config.params.batch_size, dict(config.data.held_out))

    def validate(self, config) -> None:
        p = config.params
        if config.model.encoder != "mixing":
            raise ValueError(f"the mixing autoencoder uses its own networks: set ModelConfig.encoder "
                             f"to 'mixing' (got {config.model.encoder!r})")
        if config.model.embedding_dim != CHUNKS * p.chunk_size:
            raise ValueError(f"embedding dim {config.model.embedding_dim} must be {CHUNKS} chunks x "
                             f"chunk_size {p.chunk_size} = {CHUNKS * p.chunk_size}")
        for name in ("chunk_size", "width", "classifier_fc", "batch_size"):
            v = getattr(p, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"mixing {name.replace('_', ' ')} must be a positive integer, got {v!r}")
        if len(p.classifier_channels) != 5 or any(int(c) < 1 for c in p.classifier_channels):
            raise ValueError("mixing classifier channels must be 5 positive integers (AlexNet's "
                             f"five convolutions), got {p.classifier_channels!r}")
        for name in ("mix_weight", "gan_weight", "classifier_weight", "reconstruction_weight"):
            v = getattr(p, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"mixing {name.replace('_', ' ')} must be a finite number >= 0, got {v!r}")
        if not (p.mix_weight or p.reconstruction_weight):
            raise ValueError("nothing would train the decoder: set mix_weight or "
                             "reconstruction_weight above 0")
        if p.reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {p.reduction!r}; valid: {', '.join(REDUCTIONS)}")

    def presets(self, name: str, source: str):
        return {"paper": _paper, "quick": _quick}[name](source)

    # ----- training ---------------------------------------------------------------------------
    def build(self, config, dataset):
        from acc_core.nets_mixing import MixingModel

        h, _, c = dataset.image_shape
        p = config.params
        return MixingModel(c, config.data.image_size or h, CHUNKS, p.chunk_size, p.width,
                           tuple(p.classifier_channels), p.classifier_fc)

    def optimizer(self, model, config):
        # the reference code: Adam(beta1 0.5) for every network (DCGAN's setting)
        return torch.optim.Adam(model.parameters(), lr=config.train.lr, betas=(0.5, 0.999))

    def batcher(self, config, dataset):
        from acc_core.methods.vae import ImageSampler

        b = config.params.batch_size
        sampler = ImageSampler(dataset, 2 * b, dict(config.data.held_out))

        def draw(rng: np.random.Generator, step: int) -> dict:
            return {"indices": sampler.sample(rng).reshape(2, b)}  # (2, B): x1 and x2, distinct

        return draw

    def loss(self, model, batch, config, gen, step):
        p = config.params
        x = batch["x"]  # (2, B, C, H, W)
        mask = draw_mask(gen, x.shape[1], CHUNKS, p.one_mask_per_batch).to(x.device)
        return mixing_loss(model, x[0], x[1], mask, p)

    # ----- analysis ---------------------------------------------------------------------------
    def encode(self, model, x, representation):
        f = model.encoder(x)  # (B, 8d)
        if representation == "code":
            return f
        i, d = int(representation[len("chunk"):]), model.chunk_size
        return f[:, i * d:(i + 1) * d]

    def evaluate_model(self, model, config, dataset, device) -> dict:
        from acc_core.methods.mixing_eval import evaluate

        return evaluate(model, config, dataset, device)


METHOD = Mixing()

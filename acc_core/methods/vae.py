"""Variational autoencoders with and without weak supervision, on the disentanglement_lib
networks (acc_core.nets_vae):

- `beta_vae`: beta-VAE (Higgins et al. 2017; disentanglement_lib methods/unsupervised/
  vae.py `BetaVAE`), the unsupervised baseline: rec + beta * KL, random images.
- `ml_vae`: ML-VAE (Bouchacourt et al. 2018, "Multi-level variational autoencoder", arXiv
  1705.08841) on groups = the ACC sets of set A: the latent is split into a per-image style
  part and a group part whose posterior is the product of the group's per-image Gaussian
  experts (precision-weighted); one group sample is shared by every image of the group.
- `ada_gvae`: Ada-GVAE (Locatello et al. 2020, "Weakly-supervised disentanglement without
  compromises", arXiv 2002.02886, section 4; disentanglement_lib methods/weak/weak_vae.py
  `GroupVAEArgmax` / `MLVaeArgmax`) on pairs that share set A's inactive factors and differ
  in an unknown number of the others: per latent dimension delta = KL between the pair's
  posteriors, tau = (max + min) / 2 of the pair's deltas, the dimensions below tau are
  replaced by the average posterior ("gvae": mean of means and of variances, Hosoya 2019;
  "mlvae": product of the two experts).

Choices where the references differ (each also noted where it is made):
- encoder kernels: 2x2 for the last two convolutions as disentanglement_lib (nets_vae).
- Ada-GVAE delta: the paper and disentanglement_lib use the one-sided KL(q(z|x1) || q(z|x2))
  (disentanglement_lib's compute_kl is twice it, which the scale-free threshold ignores);
  disent defaults to the symmetric 0.5 * (KL12 + KL21). Default "kl"; `delta="symmetric_kl"`.
- Ada-GVAE "mlvae" average: the true product of the two Gaussians (precision sum, precision-
  weighted mean), as the paper's ML-VAE; disentanglement_lib's MLVae (and disent) use twice
  that variance (the harmonic mean of the variances) with the same mean.
- Ada-GVAE loss: the paper's sum over the pair, rec(x1) + rec(x2) + beta (KL1 + KL2);
  disentanglement_lib averages the two (a factor 1/2, which Adam all but ignores).
- Ada-GVAE pairs: disentanglement_lib changes 1 or k ~ U{1..K-1} factors with the global
  numpy generator and may redraw a factor to its own value; here the number of changed
  factors is uniform in 1..(number of active factors), the subset uniform of that size, every
  changed factor takes a different allowed value, and everything comes from the step's rng.
- Ada-GVAE degenerate pair (all deltas equal, e.g. x1 == x2): every dimension is averaged
  (disentanglement_lib's zero-width histogram puts all values in the first bin; disent's
  strict `<` would average none).
- ML-VAE group KL: counted once per group, as the group ELBO of Bouchacourt et al. (eq. 5);
  the loss is that ELBO divided by the group size, i.e. per image
  rec + beta * KL_style + beta * KL_group / S.

Every loss is per image (or per pair / group) and averaged over the batch; Adam
(0.9, 0.999) at the run's lr (disentanglement_lib: Adam 1e-4, beta1 0.9, beta2 0.999,
eps 1e-8).

Supervision uses set A only (set B belongs to ACC and is ignored). Held-out values are never
drawn in training. Representations are posterior means (`encode`); their loss has no length
scale (`length_scale` -> None).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from acc_core.methods.base import Method, Sentence
from acc_core.nets_vae import (GaussianVAE, bernoulli_reconstruction, kl_to_standard_normal,
                               reparameterize)

ENCODER = "dlib_vae"  # ModelConfig.encoder of every VAE run (acc_core.nets_vae)
AVERAGES = ("gvae", "mlvae")
DELTAS = ("kl", "symmetric_kl")
TRAVERSAL_STEPS = 7  # latent traversals: 7 values from mean - 2 to mean + 2
TRAVERSAL_RANGE = 2.0
EVAL_BATCH = 256  # images of the fixed evaluation batch (reconstruction, KL per dimension)
EVAL_SEED = 20_200_607  # the same probe image and batch for every run on a dataset


# ----- hyperparameters -------------------------------------------------------------------------
@dataclass(frozen=True)
class BetaVAEParams:
    latent_dim: int = 10  # disentanglement_lib's num_latent for every model; = embedding_dim
    beta: float = 1.0  # low end of both studies' sweep {1, 2, 4, 6, 8, 16}; 1 = the plain ELBO
    batch_size: int = 64  # disentanglement_lib's batch size


@dataclass(frozen=True)
class MLVAEParams:
    style_dim: int = 7  # per-image part: the active factors (5 of 6 on Shapes3D) and style
    group_dim: int = 3  # shared part: the set's inactive factors (one factor in the presets)
    beta: float = 1.0  # the weak study sweeps {1, 2, 4, 6, 8, 16}; 1 = the plain group ELBO

    @property
    def latent_dim(self) -> int:  # = embedding_dim; style first, then group
        return self.style_dim + self.group_dim


@dataclass(frozen=True)
class AdaGVAEParams:
    latent_dim: int = 10  # as disentanglement_lib; = embedding_dim
    beta: float = 1.0  # the weak study sweeps {1, 2, 4, 6, 8, 16}
    batch_size: int = 64  # pairs per step (disentanglement_lib: 64 pairs, 128 images)
    average: str = "gvae"  # "gvae" (Ada-GVAE, the paper's better variant) or "mlvae" (Ada-ML-VAE)
    delta: str = "kl"  # "kl" as the paper/disentanglement_lib, or disent's "symmetric_kl"


# ----- pure tensor functions (tested by hand in tests/test_vae.py) ------------------------------
def kl_per_dim(mu1, logvar1, mu2, logvar2) -> torch.Tensor:
    """KL(N(mu1, e^lv1) || N(mu2, e^lv2)) per dimension (same shape as the inputs):
    0.5 * (e^(lv1 - lv2) + (mu1 - mu2)^2 e^-lv2 - 1 + lv2 - lv1)."""
    return 0.5 * ((logvar1 - logvar2).exp() + (mu1 - mu2).pow(2) * (-logvar2).exp()
                  - 1.0 + logvar2 - logvar1)


def pair_deltas(mu1, logvar1, mu2, logvar2, kind: str = "kl") -> torch.Tensor:
    """(B, L) per-dimension divergence of a pair's posteriors: "kl" = KL(q1 || q2) (the paper,
    disentanglement_lib), "symmetric_kl" = 0.5 (KL(q1 || q2) + KL(q2 || q1)) (disent)."""
    if kind == "kl":
        return kl_per_dim(mu1, logvar1, mu2, logvar2)
    if kind == "symmetric_kl":
        return 0.5 * (kl_per_dim(mu1, logvar1, mu2, logvar2) + kl_per_dim(mu2, logvar2, mu1, logvar1))
    raise ValueError(f"unknown delta {kind!r}; valid: {', '.join(DELTAS)}")


def adaptive_threshold_mask(delta: torch.Tensor) -> torch.Tensor:
    """(B, L) deltas -> (B, L) bool, True where the dimension is SHARED (to be averaged).

    tau = 0.5 * (max + min) over each row (disentanglement_lib: two equal-width histogram
    bins between the row's min and max); shared = delta < tau, so the largest delta always
    keeps its own posterior. A row whose deltas are all equal is all shared (the reference's
    zero-width histogram puts every value in the lower bin)."""
    hi = delta.max(dim=-1, keepdim=True).values  # (B, 1)
    lo = delta.min(dim=-1, keepdim=True).values
    tau = 0.5 * (hi + lo)
    return (delta < tau) | (hi == lo)


def product_of_gaussians(mu: torch.Tensor, logvar: torch.Tensor, dim: int):
    """Product of the Gaussian experts along `dim` (reduced): precision = sum of the
    precisions, mean = precision-weighted mean of the means. Returns (mu, logvar).
    Computed in log space: logvar = -logsumexp(-logvar), weights = softmax(-logvar)."""
    new_logvar = -torch.logsumexp(-logvar, dim=dim)
    weights = torch.softmax(-logvar, dim=dim)  # precision_i / sum precision
    return (weights * mu).sum(dim=dim), new_logvar


def average_posteriors(mu1, logvar1, mu2, logvar2, mask, rule: str = "gvae"):
    """The pair's posteriors after averaging the `mask`ed (shared) dimensions.

    rule "gvae": mean (mu1 + mu2) / 2, variance (var1 + var2) / 2 (GVAE, Hosoya 2019);
    rule "mlvae": the product of the two experts (precision sum, precision-weighted mean).
    Returns (mu1', logvar1', mu2', logvar2'), each shaped like mu1; unmasked dimensions keep
    their own posterior."""
    if rule == "gvae":
        avg_mu = 0.5 * (mu1 + mu2)
        avg_lv = torch.logaddexp(logvar1, logvar2) - np.log(2.0)  # log((var1 + var2) / 2)
    elif rule == "mlvae":
        avg_mu, avg_lv = product_of_gaussians(torch.stack([mu1, mu2]), torch.stack([logvar1, logvar2]), 0)
    else:
        raise ValueError(f"unknown average {rule!r}; valid: {', '.join(AVERAGES)}")
    return (torch.where(mask, avg_mu, mu1), torch.where(mask, avg_lv, logvar1),
            torch.where(mask, avg_mu, mu2), torch.where(mask, avg_lv, logvar2))


# ----- samplers ------------------------------------------------------------------------------------
def _held_out(config) -> dict:
    return dict(config.data.held_out)


class ImageSampler:
    """Random images whose factor values are all allowed (not held out), distinct per batch."""

    def __init__(self, dataset, batch_size: int, held_out=None):
        from acc_core.sets import SetSampler

        self._sets = SetSampler(dataset, (), batch_size, held_out=held_out)  # one pool of everything

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self._sets.sample(rng, 1)[0]  # (B,)


class PairSampler:
    """Pairs sharing the inactive factors, differing in an unknown number of the active ones.

    Grid datasets: x1 has uniformly drawn allowed values; x2 = x1 with a uniformly sized,
    uniformly chosen non-empty subset of the active factors redrawn to DIFFERENT allowed
    values (dataset.index_of's layout: index = factors @ strides). Labelled datasets (digits):
    x2 is another image with the same values of the inactive factors (a set of two drawn by
    acc_core.sets.SetSampler). Everything comes from the given rng."""

    def __init__(self, dataset, inactive, held_out=None):
        from acc_core.sets import SetSampler, _allowed_values, _check_inactive, _normalise_held_out

        self.dataset = dataset
        self.inactive = _check_inactive(dataset, tuple(inactive))
        held = _normalise_held_out(dataset, held_out)
        if dataset.is_grid:
            self._allowed = _allowed_values(dataset, held)  # per factor, allowed value indices
            self._changeable = np.asarray(
                [k for k, n in enumerate(dataset.factor_names)
                 if n not in self.inactive and len(self._allowed[k]) >= 2], dtype=np.int64)
            if not len(self._changeable):
                raise ValueError("no active factor has two allowed values, so the images of a "
                                 "pair could not differ; make a factor active or hold out fewer values")
            self._strides = dataset._strides
        else:
            self._sets = SetSampler(dataset, self.inactive, 2, held_out=held)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(2, n) int64 image indices: row 0 = x1, row 1 = x2."""
        if not self.dataset.is_grid:
            return self._sets.sample(rng, n).T.copy()  # (2, n)
        ds, allowed = self.dataset, self._allowed
        pos = np.stack([rng.integers(len(a), size=n) for a in allowed], axis=1)  # (n, K) positions
        f1 = np.stack([allowed[k][pos[:, k]] for k in range(ds.num_factors)], axis=1)  # (n, K)
        m = len(self._changeable)
        size = rng.integers(1, m + 1, size=n)  # (n,) how many factors change, 1..m
        rank = np.argsort(np.argsort(rng.random((n, m)), axis=1), axis=1)  # (n, m) random permutation
        changed = rank < size[:, None]  # (n, m) a uniform subset of that size
        f2 = f1.copy()
        for j, k in enumerate(self._changeable):
            size_k = len(allowed[k])
            shift = rng.integers(1, size_k, size=n)  # 1..size-1: never the same value
            new = allowed[k][(pos[:, k] + shift) % size_k]
            f2[:, k] = np.where(changed[:, j], new, f1[:, k])
        return np.stack([f1 @ self._strides, f2 @ self._strides]).astype(np.int64)  # (2, n)


# ----- shared method plumbing ----------------------------------------------------------------------
def _paper_base(source: str, method: str, params):
    from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig

    # "paper" = disentanglement_lib's defaults: 10 latents, batch 64, Adam lr 1e-4, 64x64
    # Shapes3D; 20,000 steps instead of the reference's 300,000 (a GPU run in minutes, not a day).
    if source.startswith("shapes3d"):
        return RunConfig(
            data=DataConfig(source=source),
            set_a=SetSpec(inactive=("wall_hue",)),  # ACC's default scenario
            set_b=SetSpec(inactive=("wall_hue",)),
            model=ModelConfig(encoder=ENCODER, embedding_dim=params.latent_dim),
            train=TrainConfig(method=method, lr=1e-4, steps=20_000, set_size=8, pairs_per_step=8,
                              checkpoint_every=1000, snapshot_every=2000, probe_size=2000),
            params=params,
        )
    if source == "pose-procedural":
        # The ACC paper's Table 1 baselines: groups = one object instance seen from several
        # viewpoints (set A of acc_pose), synthetic images only (the real domain and the
        # held-out test instances 10-11 never drawn), at the pose report's 64x64.
        return RunConfig(
            data=DataConfig(source=source, image_size=64,
                            held_out={"instance": (10, 11), "domain": (1,)}),
            set_a=SetSpec(inactive=("category", "instance", "domain")),
            set_b=SetSpec(inactive=("category", "instance", "domain")),
            model=ModelConfig(encoder=ENCODER, embedding_dim=params.latent_dim),
            train=TrainConfig(method=method, lr=1e-4, steps=20_000, set_size=8, pairs_per_step=8,
                              checkpoint_every=1000, snapshot_every=2000, probe_size=1000),
            params=params,
        )
    # digits/MNIST: ACC's digit scenario (sets grouped by digit, 9 held out), same optimiser.
    return RunConfig(
        data=DataConfig(source=source, held_out={"digit": (9,)}),
        set_a=SetSpec(inactive=("digit",)),
        set_b=SetSpec(inactive=("digit",)),
        model=ModelConfig(encoder=ENCODER, embedding_dim=params.latent_dim),
        train=TrainConfig(method=method, lr=1e-4, steps=5000, set_size=8, pairs_per_step=8,
                          checkpoint_every=500, snapshot_every=500, probe_size=2000),
        params=params,
    )


def _quick_base(source: str, method: str, params, steps_shapes: int, steps_digits: int):
    from acc_core.config import DataConfig

    cfg = _paper_base(source, method, params)
    # quick: 32x32 renders, lr 1e-3 (10x the reference: a few thousand steps must show
    # structure) and 1000 probe images, 8 snapshots; about 60 s each on 2 idle CPU
    # cores (measured 36-48 steps/s; up to 10x slower when other jobs share the cores).
    if source.startswith("shapes3d"):
        steps = steps_shapes
        cfg = cfg.replace(data=DataConfig(source=source, image_size=32))
    elif source == "pose-procedural":
        steps = steps_shapes  # 64x64 kept: the pose lookup's images
    else:
        steps = steps_digits
    every = max(1, steps // 8)
    return cfg.replace(train=dataclasses.replace(
        cfg.train, lr=1e-3, steps=steps, snapshot_every=every, checkpoint_every=every * 2,
        probe_size=1000))


def _image_size(config, dataset) -> int:
    return config.data.image_size or dataset.image_shape[0]


def _build(config, dataset) -> GaussianVAE:
    h, _, c = dataset.image_shape
    return GaussianVAE(config.method.latent_dim(config), in_channels=c, image_size=_image_size(config, dataset))


def _check_weak(method: str, config, dataset, need: str) -> None:
    """ML-VAE and Ada-GVAE need something shared (an inactive factor in set A) and something
    that varies (an active factor, or unlabelled style on labelled datasets)."""
    inactive = tuple(config.set_a.inactive)
    if not inactive:
        raise ValueError(f"{method} needs {need} that share something: mark at least one factor "
                         "inactive in set A (e.g. wall_hue on Shapes3D, digit on digits)")
    if dataset.is_grid and len(inactive) >= dataset.num_factors:
        raise ValueError(f"{method} needs at least one active factor in set A, so that the images "
                         f"of its {need} differ; make one of {', '.join(inactive)} active")


def _check_common(config, expected: int) -> None:
    m = config.model
    if m.encoder != ENCODER:
        raise ValueError(f"the VAE methods use the {ENCODER!r} networks (acc_core.nets_vae), got "
                         f"encoder {m.encoder!r}; set ModelConfig.encoder to {ENCODER!r}")
    if m.embedding_dim != expected:
        raise ValueError(f"embedding dim {m.embedding_dim} differs from the VAE's latent size "
                         f"{expected} (params); set both to the same number")
    beta = config.params.beta
    if not (isinstance(beta, (int, float)) and np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


def _positive_int(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _eval_images(config, dataset, device):
    """A fixed probe image (for traversals) and a fixed batch of allowed images (scores)."""
    from acc_core.train import to_tensor

    n_allowed = max(2, min(EVAL_BATCH, len(dataset)))
    try:
        idx = ImageSampler(dataset, n_allowed, _held_out(config)).sample(np.random.default_rng(EVAL_SEED))
    except ValueError:  # fewer allowed images than the batch: take what there is
        idx = ImageSampler(dataset, 2, _held_out(config)).sample(np.random.default_rng(EVAL_SEED))
    x = to_tensor(dataset.images(np.sort(idx)), config.data.image_size, device)
    return x[:1], x  # (1, C, S, S), (n, C, S, S)


def _to_uint8(logits: torch.Tensor) -> np.ndarray:
    """(..., C, S, S) logits -> (..., S, S, C) uint8 means of the Bernoulli decoder."""
    img = torch.sigmoid(logits.float()).mul(255).round().clamp(0, 255).to(torch.uint8)
    return img.movedim(-3, -1).cpu().numpy()


class _VAEMethod(Method):
    """What the three VAEs share: networks, encode, evaluation."""

    representations = ("mean",)
    uses_similarity = False

    def latent_dim(self, config) -> int:
        return config.params.latent_dim

    def quick_params(self):
        return self.params()

    def presets(self, name: str, source: str):
        if name == "paper":
            return _paper_base(source, self.name, self.params())
        if name == "quick":  # about a minute on 2 CPU cores (benchmarks/bench_methods.py)
            return _quick_base(source, self.name, self.quick_params(),
                               steps_shapes=2500, steps_digits=2000)
        raise ValueError(f"unknown preset {name!r}; valid: paper, quick")

    def build(self, config, dataset):
        return _build(config, dataset)

    def encode(self, model, x, representation):
        return model.encode(x)[0]  # posterior means (B, L)

    def length_scale(self, config, representation):
        return None

    def _posterior_means(self, model, x):
        """(B, L) means in the order of the "mean" representation."""
        return model.encode(x)[0]

    def evaluate_model(self, model, config, dataset, device) -> dict:
        """Latent traversals of a fixed probe image (each latent from mean - 2 to mean + 2 in 7
        steps, the others at their means; uint8 (L, 7, S, S, C)), and on a fixed batch of
        allowed images: the reconstruction BCE per image (decoding the means) and the KL to the
        prior per latent dimension (the active dimensions stand out)."""
        with torch.no_grad():
            probe, batch = _eval_images(config, dataset, device)
            mu, logvar = model.encode(probe)  # (1, L)
            L = mu.shape[1]
            offsets = torch.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, TRAVERSAL_STEPS, device=mu.device)
            z = mu.repeat(L, TRAVERSAL_STEPS, 1)  # (L, T, L)
            z[torch.arange(L), :, torch.arange(L)] += offsets  # latent i moves in row i
            traversal = _to_uint8(model.decode(z.view(L * TRAVERSAL_STEPS, L)))
            traversal = traversal.reshape(L, TRAVERSAL_STEPS, *traversal.shape[1:])
            bmu, blv = model.encode(batch)  # (n, L)
            rec = bernoulli_reconstruction(model.decode(bmu), batch).mean()
            kl = kl_to_standard_normal(bmu, blv).mean(0)  # (L,)
            original = probe.mul(255).round().to(torch.uint8).movedim(1, -1).cpu().numpy()  # (1, S, S, C)
            recon = _to_uint8(model.decode(mu))
        return {
            "scores": {
                "reconstruction_bce": float(rec),
                "kl_total": float(kl.sum()),
                "kl_per_dim": {self._dim_name(config, i): float(v) for i, v in enumerate(kl.tolist())},
            },
            "images": {"traversal": traversal, "probe": np.concatenate([original, recon])},
        }

    def _dim_name(self, config, i: int) -> str:
        return f"z{i}"


# ----- beta-VAE --------------------------------------------------------------------------------------
class BetaVAE(_VAEMethod):
    name = "beta_vae"
    title = "beta-VAE (unsupervised baseline)"
    paper = "Higgins et al. 2017; disentanglement_lib methods/unsupervised/vae.py"
    supervision = "none"
    params = BetaVAEParams

    def supervision_text(self, config) -> str:
        return (f"Unsupervised: it ignores the scenario's sets and sees batches of "
                f"{config.params.batch_size} random images (held-out values never drawn); "
                f"loss = reconstruction + {config.params.beta:g} x KL to the prior.")

    def check(self, config, dataset) -> None:
        from acc_core.sets import validate_sets

        validate_sets(dataset, (), config.params.batch_size, _held_out(config))

    def validate(self, config) -> None:
        p = config.params
        _positive_int("latent_dim", p.latent_dim)
        _positive_int("batch_size", p.batch_size)
        _check_common(config, p.latent_dim)

    def batcher(self, config, dataset):
        sampler = ImageSampler(dataset, config.params.batch_size, _held_out(config))

        def draw(rng: np.random.Generator, step: int) -> dict:
            return {"indices": sampler.sample(rng)}  # (B,)

        return draw

    def loss(self, model, batch, config, gen, step):
        x = batch["x"]  # (B, C, S, S)
        mu, logvar = model.encode(x)  # (B, L) each
        z = reparameterize(mu, logvar, gen)
        rec = bernoulli_reconstruction(model.decode(z), x).mean()  # per image
        kl = kl_to_standard_normal(mu, logvar).sum(1).mean()  # summed over latents
        loss = rec + config.params.beta * kl
        return loss, {"rec": float(rec.detach()), "kl": float(kl.detach())}


# ----- ML-VAE ------------------------------------------------------------------------------------------
class MLVAE(_VAEMethod):
    name = "ml_vae"
    title = "ML-VAE (groups, product of experts)"
    paper = "Bouchacourt et al. 2018 (arXiv 1705.08841); groups = the ACC sets of set A"
    supervision = "sets"
    params = MLVAEParams
    # mean: style ++ group means (an image on its own: its own group-posterior mean, the
    # product of one expert); style: the per-image part; group: the shared part.
    representations = ("mean", "style", "group")

    def latent_dim(self, config) -> int:
        return config.params.style_dim + config.params.group_dim

    def supervision_text(self, config) -> str:
        a = Sentence.factors(config.set_a.inactive)
        return (f"Groups of {config.train.set_size} images that hold {a} fixed (set A's sets, "
                f"{config.train.pairs_per_step} per step) share one group latent, the product of "
                f"their posteriors; set B is ignored.")

    def check(self, config, dataset) -> None:
        from acc_core.sets import validate_sets

        _check_weak("ML-VAE", config, dataset, "groups")
        validate_sets(dataset, config.set_a.inactive, config.train.set_size, _held_out(config))

    def validate(self, config) -> None:
        p = config.params
        _positive_int("style_dim", p.style_dim)
        _positive_int("group_dim", p.group_dim)
        _check_common(config, p.style_dim + p.group_dim)

    def batcher(self, config, dataset):
        from acc_core.sets import SetSampler

        t = config.train
        sampler = SetSampler(dataset, config.set_a.inactive, t.set_size, held_out=_held_out(config))

        def draw(rng: np.random.Generator, step: int) -> dict:
            return {"indices": sampler.sample(rng, t.pairs_per_step)}  # (G, S)

        return draw

    def loss(self, model, batch, config, gen, step):
        p = config.params
        x = batch["x"]  # (G, S, C, H, W)
        G, S = x.shape[:2]
        flat = x.flatten(0, 1)  # (G*S, C, H, W)
        mu, logvar = model.encode(flat)  # (G*S, L): style first, then group
        sd = p.style_dim
        mu_s, lv_s = mu[:, :sd], logvar[:, :sd]  # (G*S, sd)
        mu_g, lv_g = product_of_gaussians(mu[:, sd:].view(G, S, -1), logvar[:, sd:].view(G, S, -1), 1)  # (G, gd)
        z_s = reparameterize(mu_s, lv_s, gen)  # (G*S, sd) one sample per image
        z_g = reparameterize(mu_g, lv_g, gen)  # (G, gd) one sample per group, shared
        z = torch.cat([z_s, z_g.repeat_interleave(S, dim=0)], dim=1)  # (G*S, L)
        rec = bernoulli_reconstruction(model.decode(z), flat).mean()  # per image
        kl_style = kl_to_standard_normal(mu_s, lv_s).sum(1).mean()  # per image
        kl_group = kl_to_standard_normal(mu_g, lv_g).sum(1).mean()  # per group
        # the group ELBO (KL of the group latent once per group) divided by the group size
        loss = rec + p.beta * (kl_style + kl_group / S)
        return loss, {"rec": float(rec.detach()), "kl_style": float(kl_style.detach()),
                      "kl_group": float(kl_group.detach())}

    def encode(self, model, x, representation):
        mu = model.encode(x)[0]  # (B, L): style ++ the image's own group-posterior mean
        sd = model.spec["latent_dim"] - self._group_dim(model)
        if representation == "style":
            return mu[:, :sd]
        if representation == "group":
            return mu[:, sd:]
        return mu

    @staticmethod
    def _group_dim(model) -> int:
        return model.group_dim

    def build(self, config, dataset):
        model = _build(config, dataset)
        model.group_dim = config.params.group_dim  # plain attribute: encode needs the split
        return model

    def _dim_name(self, config, i: int) -> str:
        sd = config.params.style_dim
        return f"style{i}" if i < sd else f"group{i - sd}"


# ----- Ada-GVAE --------------------------------------------------------------------------------------
class AdaGVAE(_VAEMethod):
    name = "ada_gvae"
    title = "Ada-GVAE (pairs, adaptive threshold)"
    paper = "Locatello et al. 2020 (arXiv 2002.02886); disentanglement_lib methods/weak/weak_vae.py"
    supervision = "pairs"
    params = AdaGVAEParams

    def supervision_text(self, config) -> str:
        a = Sentence.factors(config.set_a.inactive)
        return (f"Pairs of images that share {a} (set A's inactive factors) and differ in an unknown "
                f"number of the other factors; the latents that differ least within a pair are "
                f"averaged ({config.params.average}); set B is ignored.")

    def check(self, config, dataset) -> None:
        _check_weak("Ada-GVAE", config, dataset, "pairs")
        PairSampler(dataset, config.set_a.inactive, _held_out(config))  # raises if impossible

    def validate(self, config) -> None:
        p = config.params
        _positive_int("latent_dim", p.latent_dim)
        _positive_int("batch_size", p.batch_size)
        if p.latent_dim < 2:
            raise ValueError("Ada-GVAE needs latent_dim >= 2 (one dimension cannot be split into "
                             "shared and changed)")
        if p.average not in AVERAGES:
            raise ValueError(f"unknown average {p.average!r}; valid: {', '.join(AVERAGES)}")
        if p.delta not in DELTAS:
            raise ValueError(f"unknown delta {p.delta!r}; valid: {', '.join(DELTAS)}")
        _check_common(config, p.latent_dim)

    def quick_params(self):
        return AdaGVAEParams(batch_size=32)  # 32 pairs = 64 images per step, as the others

    def batcher(self, config, dataset):
        sampler = PairSampler(dataset, config.set_a.inactive, _held_out(config))
        n = config.params.batch_size

        def draw(rng: np.random.Generator, step: int) -> dict:
            return {"indices": sampler.sample(rng, n)}  # (2, B): row 0 = x1, row 1 = x2

        return draw

    def loss(self, model, batch, config, gen, step):
        p = config.params
        x = batch["x"]  # (2, B, C, H, W)
        B = x.shape[1]
        flat = x.flatten(0, 1)  # (2B, C, H, W): one forward for both images
        mu, logvar = model.encode(flat)  # (2B, L)
        mu1, mu2, lv1, lv2 = mu[:B], mu[B:], logvar[:B], logvar[B:]
        with torch.no_grad():  # the mask is discrete: no gradient flows through it anyway
            shared = adaptive_threshold_mask(pair_deltas(mu1, lv1, mu2, lv2, p.delta))  # (B, L)
        m1, l1, m2, l2 = average_posteriors(mu1, lv1, mu2, lv2, shared, p.average)
        mu_a, lv_a = torch.cat([m1, m2]), torch.cat([l1, l2])  # (2B, L)
        z = reparameterize(mu_a, lv_a, gen)  # independent samples for x1 and x2
        rec_img = bernoulli_reconstruction(model.decode(z), flat)  # (2B,)
        kl_img = kl_to_standard_normal(mu_a, lv_a).sum(1)  # (2B,)
        # the paper's pair ELBO: rec(x1) + rec(x2) + beta (KL1 + KL2), mean over pairs
        loss = (rec_img.view(2, B).sum(0) + p.beta * kl_img.view(2, B).sum(0)).mean()
        return loss, {"rec": float(rec_img.mean().detach()), "kl": float(kl_img.mean().detach()),
                      "shared_dims": float(shared.float().sum(1).mean())}


BETA_VAE, ML_VAE, ADA_GVAE = BetaVAE(), MLVAE(), AdaGVAE()
METHODS = {"beta_vae": BETA_VAE, "ml_vae": ML_VAE, "ada_gvae": ADA_GVAE}

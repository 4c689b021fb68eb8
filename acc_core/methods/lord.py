"""LORD: latent optimisation for representation disentanglement (seed 002, Gabbay & Hoshen,
"Demystifying inter-class disentanglement").

Supervision: classes. The class of an image is the combination of the values of set A's
inactive factors (for digits: the digit); set B is not used. Values held out in the data
config (e.g. the digit 9) are never trained on: their class code comes only from the stage-2
class encoder, which is the one-shot generalisation of seed 002 section 3.2.

- Stage 1, latent optimisation (seed 002 section 3.1, Eq. 5-7, Figure 1): one content code
  per training image and one class code per class are free parameters (`nn.Embedding`,
  uniform(+-0.05) as the PyTorch reference), optimised jointly with an AdaIN generator
  G(class code, content code). Asymmetric noise regularisation (Eq. 6): the content code
  receives additive N(0, sigma^2) noise in training only, plus the activation decay
  lambda * ||c||^2; the class code receives neither (it is shared by all images of a class,
  so it cannot hold content).
- Stage 2, amortisation (seed 002 section 3.2, Eq. 8): a content encoder E_c and a class
  encoder E_y regress the stage-1 codes while the generator is fine-tuned on reconstruction:
  rec(G(E_y(x), E_c(x)), x) + a * ||E_y(x) - e_y||^2 + a * ||E_c(x) - c||^2, a = 10.
- Architecture (seed 002 appendix A.1 and the PyTorch reference): generator = 3 FC layers to
  small feature maps, AdaIN blocks (upsample x2, conv3x3, LeakyReLU, AdaIN whose scale and
  bias come from the class code through one Linear per block), conv5x5, conv7x7, sigmoid;
  encoders = conv7x7 then four conv4x4 stride 2, three FC layers.

The representations are `content` (E_c, the default) and `class` (E_y). `evaluate_model`
scores content transfer as the paper's Table 1-2 do, with MSE instead of LPIPS (seed 002
section 4; LPIPS needs downloaded weights): G(E_y(x_i), E_c(x_j)) against the dataset image
holding x_i's class factors and x_j's other factors, which a full factor grid always has.

Departures from the paper are listed in `DEPARTURES` (shown by the report and the app); the
main one: the VGG perceptual loss is replaced by L1 on a multi-scale image pyramid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acc_core.methods.base import Method, Sentence

DEPARTURES: tuple[str, ...] = (
    "The VGG perceptual loss is replaced by L1 on a three-level image pyramid (pixels, 1/2 "
    "and 1/4 scale): ImageNet VGG weights cannot be downloaded offline.",
    "The two encoders are also distilled during stage 1, against the detached latent codes "
    "(the paper trains them only after stage 1), so that snapshots taken during stage 1 "
    "already show meaningful codes; stage 2 then trains them with the generator as in Eq. 8.",
    "Stage 1 optimises the codes of a fixed random subset of the images (`train_images`), "
    "not of the whole dataset.",
    "One Adam optimiser (betas 0.5, 0.999) at constant learning rates, the latent codes at "
    "10x the generator's rate; no cosine decay, and stage 2 keeps the generator's rate.",
    "The code regressions use the mean squared error per dimension (a = 10, as the PyTorch "
    "reference), not the summed squared norm.",
    "The AdaIN scale is 1 + the per-block Linear output of the class code (the reference uses "
    "the raw output), so an untrained class code leaves the normalised maps unchanged.",
    "The generator has as many AdaIN blocks (at most 4) as halvings that keep its first "
    "feature maps at least 4 pixels wide: 4 at 64x64 (as the paper), 3 at 32x32, 2 at 28x28.",
    "Content transfer is scored by MSE against the true image, not LPIPS (no downloaded "
    "weights).",
)

SUBSET_SEED = 2_020_002  # the stage-1 training subset is the same for every seed of a scenario
EVAL_SEED = 2_020_003  # the evaluation pairs and the transfer grid's donors
LEAKY = 0.2  # LeakyReLU slope; the paper does not give one


@dataclass(frozen=True)
class LordParams:
    """LORD's own hyperparameters (part of the run's identity)."""

    content_dim: int = 128  # seed 002 appendix A.1: "the size of the content latent code to 128"
    class_dim: int = 256  # seed 002 appendix A.1: class code of 256
    noise_std: float = 1.0  # seed 002 appendix A.1: additive Gaussian noise with sigma = 1
    content_reg: float = 1e-3  # seed 002 appendix A.1: activation decay lambda = 0.001
    generator_channels: int = 256  # the reference's adain_dim: width of the AdaIN blocks
    last_channels: int = 64  # the reference's conv5x5 width before the output conv7x7
    max_adain_blocks: int = 4  # seed 002 appendix A.1: 4 upsampling + AdaIN blocks
    encoder_channels: int = 64  # the reference's first conv width (then 2x, 4x, 4x, 4x)
    encoder_fc: int = 256  # the reference's two hidden FC layers of the encoders
    batch_size: int = 128  # the reference's batch size
    train_images: int = 10_000  # stage-1 subset: 200 epochs of it must fit the step budget
    stage1_fraction: float = 0.625  # paper preset: 200 epochs of stage 1, then stage 2
    latent_lr_factor: float = 10.0  # seed 002 appendix A.1: 1e-3 for codes vs 1e-4 generator
    code_weight: float = 10.0  # a1 = a2 of Eq. 8 (10 in the PyTorch reference)
    distil_in_stage1: bool = True  # departure: encoders follow the codes during stage 1 too
    eval_pairs: int = 500  # content-transfer pairs in evaluate_model


# ----- supervision: classes --------------------------------------------------------------
def class_columns(config, dataset) -> list[int]:
    """Dataset columns of set A's inactive factors, in the dataset's factor order."""
    names = set(config.set_a.inactive)
    return [k for k, n in enumerate(dataset.factor_names) if n in names]


def class_ids(factors: np.ndarray, sizes, cols) -> np.ndarray:
    """(n, K) factor value indices -> (n,) int64 class ids: the mixed-radix number of the
    values in `cols` (the dataset's order, last column fastest, like the grid index)."""
    f = np.asarray(factors, dtype=np.int64)
    out = np.zeros(len(f), dtype=np.int64)
    for c in cols:
        out = out * int(sizes[c]) + f[:, c]
    return out


def num_classes(dataset, cols) -> int:
    return int(np.prod([dataset.factor_sizes[c] for c in cols])) if cols else 1


def _held_out_mask(dataset, factors: np.ndarray, held_out: dict) -> np.ndarray:
    """(n, K) -> (n,) bool: the image has some held-out value."""
    mask = np.zeros(len(factors), dtype=bool)
    for name, values in held_out.items():
        mask |= np.isin(factors[:, dataset.factor_index(name)], np.asarray(values, np.int64))
    return mask


def training_subset(config, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(subset (n,) sorted dataset indices, classes (n,)): the images whose codes stage 1
    optimises, drawn once with SUBSET_SEED among the images without held-out values."""
    p = config.params
    factors = dataset.factors(np.arange(len(dataset)))  # (N, K); 480,000 x 6 for Shapes3D
    candidates = np.flatnonzero(~_held_out_mask(dataset, factors, dict(config.data.held_out)))
    n = min(int(p.train_images), len(candidates))
    rng = np.random.default_rng(SUBSET_SEED)
    subset = np.sort(rng.choice(candidates, size=n, replace=False)).astype(np.int64)
    classes = class_ids(factors[subset], dataset.factor_sizes, class_columns(config, dataset))
    return subset, classes


# ----- networks ----------------------------------------------------------------------------
def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation: x (B, C, H, W) normalised per sample and channel over
    H, W (biased variance), then * scale (B, C) + bias (B, C)."""
    mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) * torch.rsqrt(var + eps) * scale[:, :, None, None] + bias[:, :, None, None]


def num_adain_blocks(size: int, max_blocks: int) -> int:
    """Upsampling blocks from size / 2^n to size: the most halvings (<= max_blocks) that
    keep the first maps an integer >= 4 pixels wide (64 -> 4, 32 -> 3, 28 -> 2)."""
    n = 0
    while n < max_blocks and size % (2 ** (n + 1)) == 0 and size // (2 ** (n + 1)) >= 4:
        n += 1
    return n


class Generator(nn.Module):
    """G(class code (B, Dy), content code (B, Dc)) -> images (B, C, S, S) in [0, 1]."""

    def __init__(self, content_dim: int, class_dim: int, channels: int, last_channels: int,
                 out_channels: int, size: int, max_blocks: int):
        super().__init__()
        self.blocks = num_adain_blocks(size, max_blocks)
        self.h0 = size // 2**self.blocks  # first maps (h0, h0)
        self.channels = channels
        m = self.h0 * self.h0
        # 3 FC layers (appendix A.1), widening to the first maps as the reference does
        self.fc = nn.Sequential(
            nn.Linear(content_dim, m * max(1, channels // 8)), nn.LeakyReLU(LEAKY),
            nn.Linear(m * max(1, channels // 8), m * max(1, channels // 4)), nn.LeakyReLU(LEAKY),
            nn.Linear(m * max(1, channels // 4), m * channels), nn.LeakyReLU(LEAKY),
        )
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(self.blocks))
        # per block one Linear from the class code to (scale, bias) of its channels
        self.modulation = nn.ModuleList(nn.Linear(class_dim, 2 * channels) for _ in range(self.blocks))
        self.last = nn.Sequential(
            nn.Conv2d(channels, last_channels, 5, padding=2), nn.LeakyReLU(LEAKY),
            nn.Conv2d(last_channels, out_channels, 7, padding=3), nn.Sigmoid(),
        )

    def forward(self, class_code: torch.Tensor, content_code: torch.Tensor) -> torch.Tensor:
        b = content_code.shape[0]
        h = self.fc(content_code).view(b, self.channels, self.h0, self.h0)  # (B, ch, h0, h0)
        h = h.contiguous(memory_format=torch.channels_last)
        for conv, mod in zip(self.convs, self.modulation):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, ch, 2h, 2h)
            h = F.leaky_relu(conv(h), LEAKY)
            scale, bias = mod(class_code).chunk(2, dim=1)  # (B, ch) each
            h = adain(h, 1.0 + scale, bias)
        return self.last(h)  # (B, C, S, S)


class Encoder(nn.Module):
    """(B, C, S, S) -> (B, code_dim): conv7x7, four conv4x4 stride 2, three FC layers
    (appendix A.1: 5 convolutional and 3 fully-connected layers)."""

    def __init__(self, in_channels: int, size: int, code_dim: int, width: int, fc: int):
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width, 4 * width)
        layers = [nn.Conv2d(in_channels, widths[0], 7, padding=3), nn.LeakyReLU(LEAKY)]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(LEAKY)]
        self.conv = nn.Sequential(*layers)
        s = size
        for _ in range(4):
            s = (s + 2 - 4) // 2 + 1  # conv4x4 stride 2 pad 1: 64 -> 4, 32 -> 2, 28 -> 1
        self.fc = nn.Sequential(
            nn.Linear(widths[-1] * s * s, fc), nn.LeakyReLU(LEAKY),
            nn.Linear(fc, fc), nn.LeakyReLU(LEAKY),
            nn.Linear(fc, code_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.contiguous(memory_format=torch.channels_last))
        return self.fc(h.flatten(1))


class LordModel(nn.Module):
    """Every LORD network as one module: the stage-1 latent codes, G, E_c and E_y."""

    def __init__(self, p: LordParams, n_train: int, n_classes: int, in_channels: int, size: int):
        super().__init__()
        self.content = nn.Embedding(n_train, p.content_dim)  # (n_train, Dc) per-image codes
        self.klass = nn.Embedding(n_classes, p.class_dim)  # (n_classes, Dy) per-class codes
        nn.init.uniform_(self.content.weight, -0.05, 0.05)
        nn.init.uniform_(self.klass.weight, -0.05, 0.05)
        self.generator = Generator(p.content_dim, p.class_dim, p.generator_channels,
                                   p.last_channels, in_channels, size, p.max_adain_blocks)
        self.content_encoder = Encoder(in_channels, size, p.content_dim, p.encoder_channels, p.encoder_fc)
        self.class_encoder = Encoder(in_channels, size, p.class_dim, p.encoder_channels, p.encoder_fc)

    def latent_parameters(self) -> list[nn.Parameter]:
        return [self.content.weight, self.klass.weight]


# ----- losses --------------------------------------------------------------------------------
def multiscale_l1(x_hat: torch.Tensor, x: torch.Tensor, levels: int = 3) -> torch.Tensor:
    """Stand-in for the VGG perceptual loss: sum over the pyramid levels (full, 1/2, 1/4
    resolution by 2x2 average pooling) of the mean absolute pixel error. (B, C, H, W) each."""
    total = (x_hat - x).abs().mean()
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 2:
            break
        x_hat, x = F.avg_pool2d(x_hat, 2), F.avg_pool2d(x, 2)
        total = total + (x_hat - x).abs().mean()
    return total


def content_codes(model: LordModel, positions: torch.Tensor, noise_std: float,
                  gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) content codes (B, Dc) of training positions (B,). The asymmetric noise
    (Eq. 6) is added only while the model trains; the noise comes from `gen` on the CPU so a
    run is reproducible on any device."""
    clean = model.content(positions)
    if not model.training or noise_std == 0:
        return clean, clean
    z = torch.randn(clean.shape, generator=gen, dtype=torch.float32)  # CPU, from the step's gen
    return clean + noise_std * z.to(clean.device, clean.dtype), clean


def content_penalty(clean: torch.Tensor, weight: float) -> torch.Tensor:
    """Activation decay lambda * ||c||^2, mean over the batch of the per-image squared norm."""
    return weight * clean.pow(2).sum(dim=1).mean()


def stage_of(config, step: int) -> int:
    """1 for the first round(stage1_fraction * steps) steps (steps count from 1), else 2."""
    return 1 if step <= round(config.params.stage1_fraction * config.train.steps) else 2


def lord_loss(model: LordModel, x, positions, classes, p: LordParams, gen, stage: int):
    """-> (loss, terms). x (B, C, H, W) in [0, 1], positions (B,), classes (B,)."""
    x = x.contiguous(memory_format=torch.channels_last)
    terms = {}
    if stage == 1:
        noisy, clean = content_codes(model, positions, p.noise_std, gen)
        y = model.klass(classes)  # (B, Dy): shared by the class, no noise (asymmetric)
        rec = multiscale_l1(model.generator(y, noisy).float(), x)
        reg = content_penalty(clean.float(), p.content_reg)
        loss = rec + reg
        terms["content_penalty"] = float(reg.detach())
        if p.distil_in_stage1:  # departure: encoders chase the (detached) current codes
            dist_y = F.mse_loss(model.class_encoder(x).float(), y.detach().float())
            dist_c = F.mse_loss(model.content_encoder(x).float(), clean.detach().float())
            loss = loss + p.code_weight * (dist_y + dist_c)
            terms.update(class_regression=float(dist_y.detach()), content_regression=float(dist_c.detach()))
    else:
        # Eq. 8: encoders regress the frozen stage-1 codes, G is fine-tuned on reconstruction
        with torch.no_grad():
            y = model.klass(classes).float()
            c = model.content(positions).float()
        ey = model.class_encoder(x)
        ec = model.content_encoder(x)
        rec = multiscale_l1(model.generator(ey, ec).float(), x)
        dist_y = F.mse_loss(ey.float(), y)
        dist_c = F.mse_loss(ec.float(), c)
        loss = rec + p.code_weight * (dist_y + dist_c)
        terms.update(class_regression=float(dist_y.detach()), content_regression=float(dist_c.detach()))
    terms["reconstruction"] = float(rec.detach())
    terms["stage"] = float(stage)
    return loss, terms


# ----- evaluation --------------------------------------------------------------------------
def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(n, C, H, W) in [0, 1] -> uint8 (n, H, W, C)."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def _transfer(model: LordModel, x_class: torch.Tensor, x_content: torch.Tensor, chunk: int = 250):
    """G(E_y(x_class), E_c(x_content)), (n, C, H, W) each, batched."""
    out = []
    for s in range(0, len(x_class), chunk):
        ey = model.class_encoder(x_class[s : s + chunk])
        ec = model.content_encoder(x_content[s : s + chunk])
        out.append(model.generator(ey, ec).float())
    return torch.cat(out)


def _donors(dataset, config, rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(class donors (<= n,) of distinct classes, held-out classes first; content donors (n,))."""
    pool = rng.choice(len(dataset), size=min(len(dataset), 5000), replace=False)
    f = dataset.factors(pool)
    cls = class_ids(f, dataset.factor_sizes, class_columns(config, dataset))
    held = _held_out_mask(dataset, f, dict(config.data.held_out))
    order = np.concatenate([np.flatnonzero(held), np.flatnonzero(~held)])
    picked, seen = [], set()
    for i in order:
        if len(picked) < min(2, n) or not held[i]:  # at most 2 held-out classes
            if cls[i] not in seen:
                seen.add(int(cls[i]))
                picked.append(pool[i])
        if len(picked) == n:
            break
    content = rng.choice(len(dataset), size=n, replace=False)
    return np.asarray(picked, np.int64), np.asarray(content, np.int64)


# ----- the method -------------------------------------------------------------------------------
def _paper(source: str):
    from acc_core.config import DataConfig, ModelConfig, RunConfig, SetSpec, TrainConfig

    if source.startswith("shapes3d"):
        # Seed 002 appendix A.1 at 64x64 (Cars3D/SmallNorb resolution): 128/256-D codes, lr 1e-4
        # for G (1e-3 codes), batch 128, 200 epochs of stage 1 over a 10,000-image subset
        # (15,625 steps), then 9,375 steps (120 epochs) of stage 2: 25,000 steps in all.
        p = LordParams()
        return RunConfig(
            data=DataConfig(source=source),
            set_a=SetSpec(inactive=("wall_hue",)),
            set_b=SetSpec(inactive=("wall_hue",)),
            model=ModelConfig(encoder="shapes3d", embedding_dim=p.content_dim),
            train=TrainConfig(method="lord", lr=1e-4, steps=25_000, checkpoint_every=625,
                              snapshot_every=3125, probe_size=2000, set_size=p.batch_size),
            params=p,
        )
    # Digits: every non-held-out image (about 1,600) is trained; 200 epochs of stage 1 at batch
    # 128 is 2,500 steps, then 1,500 steps of stage 2.
    p = LordParams(stage1_fraction=0.625)
    return RunConfig(
        data=DataConfig(source=source, held_out={"digit": (9,)}),
        set_a=SetSpec(inactive=("digit",)),
        set_b=SetSpec(inactive=("digit",)),
        model=ModelConfig(encoder="mnist", embedding_dim=p.content_dim),
        train=TrainConfig(method="lord", lr=1e-4, steps=4000, checkpoint_every=250,
                          snapshot_every=500, probe_size=1000, set_size=p.batch_size),
        params=p,
    )


# The quick presets: narrow networks, small codes and few images so that stage 1 gets enough
# epochs on a 2-core CPU (shapes: 560 steps x 64 / 1000 images = 36 epochs; 3000 images gave
# 12 epochs, more class leakage into the content codes and no transfer gain over returning
# the content donor); a larger learning rate (the reference's 3e-4 x 3).
QUICK_SHAPES = LordParams(
    content_dim=16, class_dim=16, generator_channels=32, last_channels=16, encoder_channels=16,
    encoder_fc=128, batch_size=64, train_images=1000, stage1_fraction=0.7,
)
QUICK_DIGITS = LordParams(
    content_dim=16, class_dim=16, generator_channels=32, last_channels=16, encoder_channels=16,
    encoder_fc=128, batch_size=64, train_images=2000, stage1_fraction=0.7,
)


def _quick(source: str):
    from acc_core.config import DataConfig

    cfg = _paper(source)
    if source.startswith("shapes3d"):
        p = QUICK_SHAPES
        return cfg.replace(
            data=DataConfig(source=source, image_size=32),
            model=dataclasses.replace(cfg.model, embedding_dim=p.content_dim),
            train=dataclasses.replace(cfg.train, lr=1e-3, steps=800, checkpoint_every=100,
                                      snapshot_every=100, probe_size=1000, set_size=p.batch_size),
            params=p,
        )
    p = QUICK_DIGITS
    return cfg.replace(
        model=dataclasses.replace(cfg.model, embedding_dim=p.content_dim),
        train=dataclasses.replace(cfg.train, lr=1e-3, steps=800, checkpoint_every=100,
                                  snapshot_every=100, probe_size=1000, set_size=p.batch_size),
        params=p,
    )


class Lord(Method):
    name = "lord"
    title = "LORD (latent optimisation, class supervision)"
    paper = "seed 002 (LORD), sections 3.1-3.2 and appendix A.1"
    supervision = "classes"
    params = LordParams
    representations = ("content", "class")
    uses_similarity = False

    def supervision_text(self, config) -> str:
        cls = Sentence.factors(config.set_a.inactive)
        held = "".join(f"; {k.replace('_', ' ')} {', '.join(map(str, v))} never trained"
                       for k, v in dict(config.data.held_out).items() if v)
        return (f"Each image's class is its {cls} (set A's inactive factors): one shared code "
                f"per class, one noisy code per image{held}.")

    def check(self, config, dataset) -> None:
        if not config.set_a.inactive:
            raise ValueError("LORD needs a class: make at least one factor inactive in set A "
                             "(its values, combined, are the class of an image, e.g. wall_hue "
                             "or digit)")
        for name in config.set_a.inactive:
            dataset.factor_index(name)  # unknown factor: ValueError naming the valid ones
        if dataset.is_grid and len(config.set_a.inactive) == dataset.num_factors:
            raise ValueError("every factor is inactive in set A, so the class would determine "
                             "the image and leave no content; leave at least one factor active")
        from acc_core.sets import _normalise_held_out

        held = _normalise_held_out(dataset, dict(config.data.held_out))
        f = dataset.factors(np.arange(len(dataset)))
        if (~_held_out_mask(dataset, f, held)).sum() < 2:
            raise ValueError("fewer than 2 images are left once the held-out values are "
                             "removed; hold out fewer values")

    def validate(self, config) -> None:
        p = config.params
        if config.model.embedding_dim != p.content_dim:
            raise ValueError(f"LORD's embedding dim is its content code size: set embedding_dim "
                             f"= content_dim (got {config.model.embedding_dim} and {p.content_dim})")
        for name in ("content_dim", "class_dim", "generator_channels", "last_channels",
                     "encoder_channels", "encoder_fc", "batch_size", "train_images", "eval_pairs"):
            if getattr(p, name) < 1:
                raise ValueError(f"LORD's {name.replace('_', ' ')} must be >= 1, got {getattr(p, name)}")
        if p.max_adain_blocks < 0:
            raise ValueError(f"LORD's max adain blocks must be >= 0, got {p.max_adain_blocks}")
        if not 0.0 <= p.stage1_fraction <= 1.0:
            raise ValueError(f"LORD's stage 1 fraction must be in [0, 1], got {p.stage1_fraction}")
        for name in ("noise_std", "content_reg", "code_weight"):
            if getattr(p, name) < 0:
                raise ValueError(f"LORD's {name.replace('_', ' ')} must be >= 0, got {getattr(p, name)}")
        if not p.latent_lr_factor > 0:
            raise ValueError(f"LORD's latent lr factor must be > 0, got {p.latent_lr_factor}")

    def presets(self, name: str, source: str):
        return {"paper": _paper, "quick": _quick}[name](source)

    # ----- training -------------------------------------------------------------------------
    def build(self, config, dataset) -> torch.nn.Module:
        subset, _ = training_subset(config, dataset)
        h, _, c = dataset.image_shape
        size = config.data.image_size or h
        n_classes = num_classes(dataset, class_columns(config, dataset))
        return LordModel(config.params, len(subset), n_classes, c, size)

    def optimizer(self, model, config) -> torch.optim.Optimizer:
        # the PyTorch reference: Adam(0.5, 0.999); codes at latent_lr_factor x the networks' lr
        lr = config.train.lr
        latent = model.latent_parameters()
        ids = {id(q) for q in latent}
        rest = [q for q in model.parameters() if id(q) not in ids]
        return torch.optim.Adam([
            {"params": rest, "lr": lr},
            {"params": latent, "lr": lr * config.params.latent_lr_factor},
        ], betas=(0.5, 0.999))

    def batcher(self, config, dataset):
        subset, classes = training_subset(config, dataset)
        b = int(config.params.batch_size)
        n = len(subset)

        def draw(rng: np.random.Generator, step: int) -> dict:
            pos = rng.choice(n, size=b, replace=n < b).astype(np.int64)  # (B,) distinct if possible
            return {"indices": subset[pos], "positions": pos, "classes": classes[pos]}

        return draw

    def loss(self, model, batch, config, gen, step):
        return lord_loss(model, batch["x"], batch["positions"], batch["classes"], config.params,
                         gen, stage_of(config, step))

    # ----- analysis ---------------------------------------------------------------------------
    def encode(self, model, x, representation):
        enc = model.content_encoder if representation == "content" else model.class_encoder
        return enc(x)

    def length_scale(self, config, representation):
        return None

    @torch.no_grad()
    def evaluate_model(self, model, config, dataset, device) -> dict:
        """Content transfer (seed 002 section 4, with MSE): scores and a transfer grid."""
        from acc_core.train import to_tensor

        p = config.params
        cols = class_columns(config, dataset)
        size = config.data.image_size

        def load(idx):
            return to_tensor(dataset.images(idx), size, device)

        rng = np.random.default_rng(EVAL_SEED)
        scores: dict = {}
        images: dict = {}
        if dataset.is_grid:
            n = min(p.eval_pairs, len(dataset))
            i = rng.choice(len(dataset), size=n, replace=False)  # class donors
            j = rng.choice(len(dataset), size=n, replace=False)  # content donors
            f = dataset.factors(j)
            f[:, cols] = dataset.factors(i)[:, cols]  # x_i's class, x_j's everything else
            truth = load(dataset.index_of(f))
            xi, xj = load(i), load(j)
            out = _transfer(model, xi, xj)
            rec = _transfer(model, xj, xj)
            scores.update(
                content_transfer_mse=float((out - truth).pow(2).mean()),
                baseline_content_donor_mse=float((xj - truth).pow(2).mean()),
                baseline_class_donor_mse=float((xi - truth).pow(2).mean()),
                reconstruction_mse=float((rec - xj).pow(2).mean()),
                pairs=float(n),
            )
        # The grid: rows = class donors, columns = content donors, donors on the border.
        rows, columns = _donors(dataset, config, rng, 6)
        xr, xc = load(rows), load(columns)
        R, C = len(rows), len(columns)
        cells = _transfer(model, xr.repeat_interleave(C, 0), xc.repeat(R, 1, 1, 1))  # (R*C, ...)
        h, w = xr.shape[-2:]
        grid = np.zeros((R + 1, C + 1, h, w, xr.shape[1]), np.uint8)
        grid[1:, 1:] = _to_uint8(cells).reshape(R, C, h, w, -1)
        grid[0, 1:] = _to_uint8(xc)
        grid[1:, 0] = _to_uint8(xr)
        images["transfer_grid"] = grid
        if dataset.is_grid:
            truth = grid.copy()
            fr, fc = dataset.factors(rows), dataset.factors(columns)
            f = np.repeat(fc[None], R, 0)  # (R, C, K)
            f[:, :, cols] = fr[:, None, cols]
            truth[1:, 1:] = _to_uint8(load(dataset.index_of(f.reshape(R * C, -1)))).reshape(R, C, h, w, -1)
            images["transfer_truth"] = truth
        return {"scores": scores, "images": images}


METHOD = Lord()

"""Run configuration: frozen dataclasses whose canonical JSON is the run's identity.

The same config is the same run: `run_id(config)` hashes the canonical JSON (sorted keys,
no whitespace), so submitting it again is a cache hit, never a second training.
Presets follow the ABC supplement S8.1 (Shapes3D) and S8.2 (MNIST).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

SIMILARITIES = ("l2sq", "l2", "cosine")
METHODS = ("acc", "hue_infonce")
AUGMENTATIONS = ("hue", "brightness_contrast", "crop", "gaussian_noise", "salt_pepper", "sobel")


@dataclass(frozen=True)
class DataConfig:
    source: str = "shapes3d-procedural"
    # Side of the square images the encoder sees; None keeps the source's own size.
    # (The procedural renderer draws natively at this size, others are area-resized.)
    image_size: int | None = None
    # Label values never seen in training (the ACC paper section 4.2 holds out the digit 9).
    held_out: dict = field(default_factory=dict)  # factor name -> tuple of value indices


@dataclass(frozen=True)
class SetSpec:
    """One set's weak supervision: inactive factors are held at one random value per set.

    No inactive factor means an unconstrained set: a random sample of everything.
    """

    inactive: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    encoder: str = "shapes3d"  # registry name in acc_core.models (the ABC supplement Tables S3/S4/S6)
    embedding_dim: int = 64  # Table S3 uses 64; 2 for the histogram MI of appendix B


@dataclass(frozen=True)
class TrainConfig:
    method: str = "acc"  # "acc", or "hue_infonce": the contrastive baseline of Fig. 3c bottom
    similarity: str = "l2sq"  # the ABC supplement S8.1
    temperature: float = 1.0  # sqrt(tau) is the length scale for l2sq
    set_size: int = 32  # the ABC supplement S8.1
    pairs_per_step: int = 1  # sets pairs per optimiser step (S8.3 uses 4)
    lr: float = 3e-5  # the ABC supplement S8.1; Adam(0.9, 0.999) as in S8
    steps: int = 2000
    augmentations: tuple[str, ...] = ()  # applied to every image before embedding
    double_augmentation: bool = False  # the ACC paper section 3: cycle from one view back to another
    seed: int = 0
    checkpoint_every: int = 100
    snapshot_every: int = 100  # embeddings of the probe subset, to watch training
    probe_size: int = 2000


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    set_a: SetSpec = field(default_factory=SetSpec)
    set_b: SetSpec = field(default_factory=SetSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ----- identity ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        data = dict(d.get("data", {}))
        data["held_out"] = {k: tuple(v) for k, v in data.get("held_out", {}).items()}
        train = dict(d.get("train", {}))
        if "augmentations" in train:
            train["augmentations"] = tuple(train["augmentations"])
        return cls(
            data=DataConfig(**data),
            set_a=SetSpec(inactive=tuple(d.get("set_a", {}).get("inactive", ()))),
            set_b=SetSpec(inactive=tuple(d.get("set_b", {}).get("inactive", ()))),
            model=ModelConfig(**d.get("model", {})),
            train=TrainConfig(**train),
        )

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **sections) -> "RunConfig":
        return dataclasses.replace(self, **sections)

    def describe(self) -> str:
        """A short human label, e.g. 'shapes3d-procedural A[wall_hue] B[wall_hue] acc l2sq t=1'."""
        a = ",".join(self.set_a.inactive) or "-"
        b = ",".join(self.set_b.inactive) or "unconstrained"
        return (
            f"{self.data.source} A[{a}] B[{b}] {self.train.method} {self.train.similarity} "
            f"t={self.train.temperature:g} d={self.model.embedding_dim} seed={self.train.seed}"
        )


def _plain(obj):
    """Tuples -> lists, dict keys sorted later by json; floats stay floats."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def validate(config: RunConfig) -> None:
    """Raise ValueError with one clear sentence for an impossible config (before training)."""
    t = config.train
    if t.method not in METHODS:
        raise ValueError(f"unknown method {t.method!r}; valid: {', '.join(METHODS)}")
    if t.similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {t.similarity!r}; valid: {', '.join(SIMILARITIES)}")
    if not t.temperature > 0:
        raise ValueError(f"temperature must be > 0, got {t.temperature}")
    if not t.lr > 0:
        raise ValueError(f"learning rate must be > 0, got {t.lr}")
    if t.steps < 1:
        raise ValueError(f"steps must be >= 1, got {t.steps}")
    if t.set_size < 2:
        raise ValueError(f"set size must be >= 2, got {t.set_size}")
    if t.pairs_per_step < 1:
        raise ValueError(f"pairs per step must be >= 1, got {t.pairs_per_step}")
    if config.model.embedding_dim < 1:
        raise ValueError(f"embedding dim must be >= 1, got {config.model.embedding_dim}")
    bad = [a for a in t.augmentations if a not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r}; valid: {', '.join(AUGMENTATIONS)}")
    if t.double_augmentation and not t.augmentations:
        raise ValueError("double augmentation needs at least one augmentation (e.g. hue)")


# ----- presets -----------------------------------------------------------------------------
def preset(name: str, source: str = "shapes3d-procedural") -> RunConfig:
    """`paper`: the papers' exact hyperparameters; `quick`: fast on a 2-core CPU."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name](source)


def _paper(source: str) -> RunConfig:
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


def _quick(source: str) -> RunConfig:
    cfg = _paper(source)
    if source.startswith("shapes3d"):
        # 32x32 renders (the Table S3 network at 32x32) and a larger learning rate: the same
        # isolation in a few hundred steps on a 2-core CPU. See README, "Presets".
        return cfg.replace(
            data=DataConfig(source=source, image_size=32),
            train=dataclasses.replace(
                cfg.train, lr=3e-4, steps=300, checkpoint_every=50, snapshot_every=25, probe_size=1000
            ),
        )
    return cfg.replace(
        train=dataclasses.replace(cfg.train, lr=3e-4, steps=200, snapshot_every=25, probe_size=1000)
    )


PRESETS = {"paper": _paper, "quick": _quick}

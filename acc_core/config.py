"""Run configuration: frozen dataclasses whose canonical JSON is the run's identity.

The same config is the same run: `run_id(config)` hashes the canonical JSON (sorted keys,
no whitespace), so submitting it again is a cache hit, never a second training.
Presets follow the ABC supplement S8.1 (Shapes3D) and S8.2 (MNIST).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from acc_core.augment import AUGMENTATIONS
from acc_core.losses import SIMILARITIES


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
    # Multiplies the final dense layer's initial weights (not a paper setting; 1 = Glorot as
    # the papers). The untrained Table S3 network at 32x32 puts its embeddings at RMS radius
    # 0.07, far inside the loss's length scale sqrt(tau) = 1, where every affinity is alike and
    # the loss sits on its plateau of log(set size); a gain of ~14 starts them near sqrt(tau).
    output_gain: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    method: str = "acc"  # a name of acc_core.methods (`acc methods` lists them)
    similarity: str = "l2sq"  # the ABC supplement S8.1
    temperature: float = 1.0  # sqrt(tau) is the length scale for l2sq
    set_size: int = 32  # the ABC supplement S8.1
    pairs_per_step: int = 1  # sets pairs per optimiser step (S8.3 uses 4)
    lr: float = 3e-5  # the ABC supplement S8.1; Adam(0.9, 0.999) as in S8
    # Learning-rate schedule (not a paper setting; the papers keep lr constant): a linear
    # warm-up over `warmup_steps`, then "constant" or "cosine" decay to 0 at the last step,
    # so a short run can take a larger lr early and still settle.
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    steps: int = 2000
    augmentations: tuple[str, ...] = ()  # applied to every image before embedding
    double_augmentation: bool = False  # the ACC paper section 3: cycle from one view back to another
    seed: int = 0
    checkpoint_every: int = 100
    snapshot_every: int = 100  # embeddings of the probe subset, to watch training
    probe_size: int = 2000
    # Arithmetic of the training steps (not a paper setting; the papers train in float32):
    # "default" = bfloat16 autocast on a GPU, float32 on a CPU (how runs always trained);
    # "float32" everywhere; "bfloat16" = autocast wherever the device computes bf16 natively
    # (AMX / AVX512-BF16 CPUs, recent GPUs; float32 elsewhere, since emulated bf16 is slower).
    # Under autocast convolutions and dense layers run in bf16; the loss's distances, softmax
    # and cross-entropy stay float32. metrics.json records the precision a run trained in.
    precision: str = "default"


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    set_a: SetSpec = field(default_factory=SetSpec)
    set_b: SetSpec = field(default_factory=SetSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # The method's own hyperparameters (a frozen dataclass of acc_core.methods), None for
    # methods that TrainConfig describes fully (ACC, the InfoNCE baseline). Left out of the
    # canonical JSON when None, so the run ids of those methods never changed.
    params: object = None

    def __post_init__(self):
        # A method with hyperparameters always carries them: None and the defaults would
        # otherwise be two ids for one run.
        cls = _params_class(self.train.method)
        if cls is None and self.params is not None:  # e.g. replace(train=...) to ACC
            object.__setattr__(self, "params", None)
        if cls is not None and self.params is None:
            object.__setattr__(self, "params", cls())
        if cls is not None and not isinstance(self.params, cls):
            raise ValueError(f"method {self.train.method!r} takes {cls.__name__} parameters, "
                             f"got {type(self.params).__name__}")

    # ----- identity ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = _plain(dataclasses.asdict(self))
        if self.params is None:
            d.pop("params")
        # Options added after runs were shipped are left out at their defaults, so the run
        # ids of every config that does not use them never changed.
        for section, name in _OMIT_AT_DEFAULT:
            if d[section][name] == _DEFAULTS[section][name]:
                d[section].pop(name)
        return d

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        unknown = sorted(set(d) - {"data", "set_a", "set_b", "model", "train", "params"})
        if unknown:
            raise ValueError(f"unknown config section {unknown[0]!r}; valid: data, set_a, "
                             "set_b, model, train, params")
        data = dict(d.get("data", {}))
        data["held_out"] = {k: tuple(v) for k, v in data.get("held_out", {}).items()}
        train = dict(d.get("train", {}))
        if "augmentations" in train:
            train["augmentations"] = tuple(train["augmentations"])
        train_cfg = TrainConfig(**train)
        pcls = _params_class(train_cfg.method)
        params = None
        if pcls is not None:
            params = _params_from_dict(pcls, d.get("params") or {})
        elif d.get("params"):
            raise ValueError(f"method {train_cfg.method!r} takes no params section")
        return cls(
            data=DataConfig(**data),
            set_a=SetSpec(inactive=tuple(d.get("set_a", {}).get("inactive", ()))),
            set_b=SetSpec(inactive=tuple(d.get("set_b", {}).get("inactive", ()))),
            model=ModelConfig(**d.get("model", {})),
            train=train_cfg,
            params=params,
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
            f"{self.data.source} A[{a}] B[{b}] {self.train.method}"
            + (f" {self.train.similarity} t={self.train.temperature:g}" if self._uses_similarity() else "")
            + f" d={self.model.embedding_dim} seed={self.train.seed}"
        )

    def _uses_similarity(self) -> bool:
        from acc_core import methods

        try:
            return methods.get(self.train.method).uses_similarity
        except ValueError:
            return True

    @property
    def method(self):
        """The registered Method of this run."""
        from acc_core import methods

        return methods.get(self.train.method)


_OMIT_AT_DEFAULT = (("model", "output_gain"), ("train", "lr_schedule"), ("train", "warmup_steps"),
                    ("train", "precision"))
_DEFAULTS = {"model": dataclasses.asdict(ModelConfig()), "train": dataclasses.asdict(TrainConfig())}
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("default", "float32", "bfloat16")


def training_precision(train: TrainConfig, device) -> str:
    """The arithmetic `train.precision` means on `device`: "bfloat16" or "float32"."""
    import torch

    from acc_core.embed import bf16_native

    dev = torch.device(device)
    if train.precision == "float32":
        return "float32"
    if train.precision == "default":
        return "bfloat16" if dev.type == "cuda" else "float32"
    return "bfloat16" if bf16_native(dev) else "float32"


def lr_factor(train: TrainConfig, step: int) -> float:
    """Multiplier of the base lr at optimiser step `step` (1-based): linear warm-up over
    `warmup_steps`, then constant or cosine decay to 0 at `steps`."""
    if step <= train.warmup_steps:
        return step / train.warmup_steps
    if train.lr_schedule == "cosine":
        span = max(train.steps - train.warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * (step - train.warmup_steps) / span))
    return 1.0


def _params_class(method: str):
    from acc_core import methods

    try:
        return methods.get(method).params
    except ValueError:
        return None  # validate() names the unknown method


def _params_from_dict(cls, d: dict):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} parameter {unknown[0]!r}; valid: {', '.join(names)}")
    # JSON has lists where the dataclass has tuples
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _plain(obj):
    """Tuples -> lists, dict keys sorted later by json; floats stay floats."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def validate(config: RunConfig) -> None:
    """Raise ValueError with one clear sentence for an impossible config (before training)."""
    from acc_core import methods

    t = config.train
    method = methods.get(t.method)  # unknown: ValueError listing the valid names
    if t.similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {t.similarity!r}; valid: {', '.join(SIMILARITIES)}")
    if not (t.temperature > 0 and math.isfinite(t.temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {t.temperature}")
    if not (t.lr > 0 and math.isfinite(t.lr)):
        raise ValueError(f"learning rate must be a finite number > 0, got {t.lr}")
    if t.steps < 1:
        raise ValueError(f"steps must be >= 1, got {t.steps}")
    if t.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {t.lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}")
    if not 0 <= t.warmup_steps < t.steps:
        raise ValueError(f"warmup steps must be in 0..steps-1, got {t.warmup_steps}")
    if t.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {t.precision!r}; valid: {', '.join(PRECISIONS)}")
    if not (config.model.output_gain > 0 and math.isfinite(config.model.output_gain)):
        raise ValueError(f"output gain must be a finite number > 0, got {config.model.output_gain}")
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
    for name in ("checkpoint_every", "snapshot_every", "probe_size"):
        if getattr(t, name) < 1:
            raise ValueError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(t, name)}")
    if not 0 <= t.seed < 2**63:
        raise ValueError(f"seed must be in 0..2**63-1, got {t.seed}")
    method.validate(config)


# ----- presets -----------------------------------------------------------------------------
PRESETS = ("paper", "quick")


def preset(name: str, source: str = "shapes3d-procedural", method: str = "acc") -> RunConfig:
    """`paper`: the publication's hyperparameters; `quick`: fast on a 2-core CPU. Each method
    declares its own (acc_core.methods)."""
    from acc_core import methods

    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return methods.get(method).presets(name, source)

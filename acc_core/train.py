"""One training loop for affinity cycle consistency (the ACC paper section 3; the ABC supplement S8).

Each step draws `pairs_per_step` pairs of sets (A, B) with the weak supervision of their
set specifications, embeds them with one network and minimises the ACC loss in both
directions (A -> B -> A and B -> A -> B). The contrastive baseline of the ACC paper Figure 3c
(bottom) shares the loop: InfoNCE between two hue augmentations of the same images.

Reproducible by construction: the randomness of step `t` comes from generators seeded with
(seed, t), so a run resumed from a checkpoint draws exactly the sets an uninterrupted run
would, and ends with the same weights on the CPU. A checkpoint is a plain dict
`{model, optimizer, step, config}` written atomically; loading never executes code.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from acc_core import data as data_sources
from acc_core.config import RunConfig, validate
from acc_core.paths import atomic_path, atomic_write_json

CHECKPOINT = "checkpoint.pt"
PROBE_SEED = 20_200_607  # the probe subset is the same for every run on a dataset


# ----- devices and data ----------------------------------------------------------------------
def pick_device(device: str | None = None) -> torch.device:
    """CUDA, then MPS, then CPU, unless a device is named."""
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_dataset(config: RunConfig):
    """The run's dataset; the procedural renderer draws natively at `image_size`."""
    d = config.data
    if d.image_size and d.source == "shapes3d-procedural":
        return data_sources.load(d.source, size=d.image_size)
    return data_sources.load(d.source)


def to_tensor(images: np.ndarray, image_size: int | None, device: torch.device) -> torch.Tensor:
    """uint8 (n, H, W, C) -> float (n, C, S, S) in [0, 1] on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if image_size and x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="area")
    return x


def probe_indices(dataset, size: int) -> np.ndarray:
    """A fixed subset of the dataset (held-out labels included), sorted, for snapshots."""
    rng = np.random.default_rng(PROBE_SEED)
    n = len(dataset)
    return np.sort(rng.choice(n, size=min(size, n), replace=False)).astype(np.int64)


def build_model(config: RunConfig, dataset) -> torch.nn.Module:
    from acc_core.models import build_encoder

    h, _, c = dataset.image_shape
    return build_encoder(
        config.model.encoder,
        config.model.embedding_dim,
        in_channels=c,
        image_size=config.data.image_size or h,
    )


# ----- the loss of one step --------------------------------------------------------------------
def step_loss(model, x_a, x_b, config: RunConfig, gen: torch.Generator) -> torch.Tensor:
    """x_a, x_b: (P, S, C, H, W) images of P set pairs. Returns the mean loss over pairs."""
    from acc_core import augment, losses

    t = config.train
    P, S = x_a.shape[:2]
    x = torch.cat([x_a, x_b]).flatten(0, 1)  # (2*P*S, C, H, W): one forward for all sets
    x = x.contiguous(memory_format=torch.channels_last)
    if t.method == "hue_infonce":
        # Two hue augmentations of the same images; positives are the two views.
        v1 = augment.apply(x, ("hue",) + tuple(a for a in t.augmentations if a != "hue"), gen)
        v2 = augment.apply(x, ("hue",) + tuple(a for a in t.augmentations if a != "hue"), gen)
        z = model(torch.cat([v1, v2])).float()  # (2 * 2PS, E)
        z1, z2 = z.chunk(2)
        return losses.info_nce(z1, z2, similarity=t.similarity, temperature=t.temperature)

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
    return total / (2 * P)


# ----- checkpoints, logs, snapshots --------------------------------------------------------------
def save_checkpoint(run_dir: Path, model, optimizer, step: int, config: RunConfig) -> None:
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": config.to_dict(),
    }
    with atomic_path(run_dir / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    """Weights only: a checkpoint never executes code when loaded."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated or not a checkpoint
        raise RuntimeError(
            f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); delete it to "
            "restart the run from scratch"
        ) from None


def load_model(run_dir: str | os.PathLike, *, device: str | None = "cpu"):
    """(model in eval mode, RunConfig) from a run directory's last checkpoint."""
    run_dir = Path(run_dir)
    config = RunConfig.from_json((run_dir / "config.json").read_text())
    dataset = load_dataset(config)
    model = build_model(config, dataset)
    ckpt = load_checkpoint(run_dir / CHECKPOINT)
    model.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
    return model.to(pick_device(device)).eval(), config


@torch.no_grad()
def embed_images(model, images: np.ndarray, image_size, device, batch: int = 512) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, E), batched, eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i : i + batch], image_size, device)
        out.append(model(x.contiguous(memory_format=torch.channels_last)).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32)


def save_snapshot(run_dir: Path, step: int, emb: np.ndarray, idx: np.ndarray, factors) -> None:
    path = run_dir / "snapshots" / f"step_{step:07d}.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, embeddings=emb, indices=idx, factors=factors, step=np.int64(step))


def _rewind_log(path: Path, step: int) -> None:
    """Keep log records up to `step` (a resumed run re-logs what came after)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rec = json.loads(line)
            if rec.get("step", 0) <= step:
                keep.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(k + "\n" for k in keep))


# ----- the loop ----------------------------------------------------------------------------------
def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    device: str | None = None,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Train (or resume) the run in `run_dir`. Returns {status, step, reason}."""
    from acc_core.sets import SetSampler

    validate(config)
    t = config.train
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").exists():
        atomic_write_json(run_dir / "config.json", config.to_dict())
    dev = pick_device(device)
    dataset = load_dataset(config)
    held_out = dict(config.data.held_out)
    sampler_a = SetSampler(dataset, config.set_a.inactive, t.set_size, held_out=held_out)
    sampler_b = SetSampler(dataset, config.set_b.inactive, t.set_size, held_out=held_out)

    torch.manual_seed(t.seed)
    # channels-last: oneDNN (CPU) and cuDNN (GPU) convolutions run faster in it; measured
    # 1.4-2.5x per training step on a 2-core CPU for these encoders.
    model = build_model(config, dataset).to(dev, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, betas=(0.9, 0.999))

    start = 0
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
    log_path = run_dir / "log.jsonl"
    _rewind_log(log_path, start)

    probe_idx = probe_indices(dataset, t.probe_size)
    probe_images = dataset.images(probe_idx)  # (P, H, W, C) uint8, kept for every snapshot
    probe_factors = dataset.factors(probe_idx)

    def snapshot(step: int) -> None:
        emb = embed_images(model, probe_images, config.data.image_size, dev)
        save_snapshot(run_dir, step, emb, probe_idx, probe_factors)

    if start == 0:
        snapshot(0)  # the untrained network: the baseline every figure shows
    if start >= t.steps:
        return {"status": "done", "step": start, "reason": None}

    amp = dev.type == "cuda"
    t0, step = time.perf_counter(), start
    steps_done_here = 0
    with open(log_path, "a") as log:
        for step in range(start + 1, t.steps + 1):
            if should_stop is not None and should_stop():
                save_checkpoint(run_dir, model, optimizer, step - 1, config)
                return {"status": "cancelled", "step": step - 1, "reason": "cancelled by user"}
            # Randomness of this step depends on (seed, step) only: resumable exactly.
            rng = np.random.default_rng([t.seed, step])
            gen = torch.Generator(device="cpu").manual_seed(t.seed * 1_000_003 + step)
            idx_a = sampler_a.sample(rng, t.pairs_per_step)  # (P, S)
            idx_b = sampler_b.sample(rng, t.pairs_per_step)
            imgs = dataset.images(np.concatenate([idx_a.ravel(), idx_b.ravel()]))
            x = to_tensor(imgs, config.data.image_size, dev)  # (2*P*S, C, H, W)
            x = x.view(2, t.pairs_per_step, t.set_size, *x.shape[1:])
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                loss = step_loss(model, x[0], x[1], config, gen)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                reason = f"non-finite loss ({loss_value}) at step {step}"
                log.write(json.dumps({"step": step, "loss": loss_value, "event": "failed"}) + "\n")
                return {"status": "failed", "step": step - 1, "reason": reason}
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            steps_done_here += 1
            elapsed = time.perf_counter() - t0
            rate = steps_done_here / elapsed if elapsed > 0 else 0.0
            rec = {
                "step": step,
                "loss": loss_value,
                "steps_per_s": rate,
                "time": time.time(),
                "eta_s": (t.steps - step) / rate if rate > 0 else None,
            }
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if step % t.checkpoint_every == 0 or step == t.steps:
                save_checkpoint(run_dir, model, optimizer, step, config)
            if step % t.snapshot_every == 0 or step == t.steps:
                snapshot(step)
            if progress is not None:
                progress({**rec, "steps": t.steps})

    atomic_write_json(
        run_dir / "metrics.json",
        {
            "final_loss": loss_value,
            "steps": t.steps,
            "steps_per_s_last_session": steps_done_here / max(time.perf_counter() - t0, 1e-9),
            "device": str(dev),
        },
    )
    return {"status": "done", "step": step, "reason": None}

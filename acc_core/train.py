"""One training loop for every method (DESIGN.md: train.py; the ABC supplement S8).

Each step draws a batch from the method's batcher (ACC: `pairs_per_step` pairs of sets with
the weak supervision of their set specifications; LORD: images and their class; the VAEs:
groups or pairs), loads its images, and minimises the method's loss. The loop knows nothing
about any method: `acc_core.methods` declares supervision, networks, loss and representations.

Reproducible by construction: the randomness of step `t` comes from generators seeded with
(seed, t), so a run resumed from a checkpoint draws exactly the batches an uninterrupted run
would, and ends with the same weights on the CPU. A checkpoint is a plain dict
`{model, optimizer, step, config, run_id}` written atomically; loading never executes code.
The run folder's layout belongs to `acc_core.rundir`.
"""

from __future__ import annotations

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
from acc_core import faults, rundir
from acc_core.config import RunConfig, lr_factor, training_precision, validate
from acc_core.data.base import DataError

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
    """All the method's networks as one module (its state dict is the checkpoint's model)."""
    return config.method.build(config, dataset)


def load_model(run_dir: str | os.PathLike, *, device: str | None = "cpu"):
    """(model in eval mode, RunConfig) from a run directory's last checkpoint."""
    run_dir = Path(run_dir)
    config = rundir.read_config(run_dir)
    dataset = data_sources.load_for(config.data)
    model = build_model(config, dataset)
    ckpt = rundir.load_checkpoint(rundir.checkpoint_path(run_dir))
    _check_checkpoint(ckpt, config, rundir.checkpoint_path(run_dir))
    model.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
    return model.to(pick_device(device)).eval(), config


def _check_checkpoint(ckpt: dict, config: RunConfig, path) -> None:
    """A checkpoint belongs to one run: refuse another run's weights."""
    if not isinstance(ckpt, dict) or "model" not in ckpt or "step" not in ckpt:
        raise DataError(f"checkpoint {path} is not a training checkpoint (no model or step); "
                        "delete it to restart the run from scratch")
    rid = ckpt.get("run_id")
    if rid is None and isinstance(ckpt.get("config"), dict):
        try:
            rid = RunConfig.from_dict(ckpt["config"]).run_id
        except (ValueError, TypeError, KeyError, AttributeError):
            rid = None
    if rid is not None and rid != config.run_id:
        raise DataError(f"checkpoint {path} belongs to run {rid}, not to run {config.run_id}; "
                        "it was copied from another run: delete it to restart this run")


@torch.no_grad()
def encode_images(model, config: RunConfig, images: np.ndarray, device, representation=None,
                  batch: int = 512) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, D) codes of `representation`, batched, eval mode."""
    method = config.method
    rep = method.check_representation(representation)
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i : i + batch], config.data.image_size, device)
        out.append(method.encode(model, x, rep).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32)


@torch.no_grad()
def encode_all(model, config: RunConfig, images: np.ndarray, device, batch: int = 512) -> dict:
    """Every representation of the method: {name: (N, D) float32}."""
    return {r: encode_images(model, config, images, device, r, batch)
            for r in config.method.representations}


def make_batch(draw, dataset, config: RunConfig, rng: np.random.Generator, step: int, dev) -> dict:
    """The method's batch of step `step`, its images loaded: batch["x"] has the shape
    `indices.shape + (C, H, W)`; numpy extras become tensors on `dev`."""
    batch = draw(rng, step)
    idx = np.asarray(batch["indices"])
    x = to_tensor(dataset.images(idx.ravel()), config.data.image_size, dev)
    out = {k: (torch.as_tensor(v, device=dev) if isinstance(v, np.ndarray) else v)
           for k, v in batch.items() if k != "indices"}
    out["indices"] = idx
    out["x"] = x.view(*idx.shape, *x.shape[1:])
    return out


def step_autocast(precision: str, dev: torch.device):
    """The autocast context a training step runs its forward and loss in, for the precision
    `training_precision` gave: bfloat16 autocast, or a no-op for float32."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def timed_steps(config: RunConfig, steps=(1, 2, 3), device=None) -> list[float]:
    """Seconds of each of a few real training steps (batch, loss, backward, optimiser) of a
    freshly built model: what the run-time estimate and the benchmarks time."""
    dev = pick_device(device)
    method = config.method
    dataset = data_sources.load_for(config.data)
    draw = method.batcher(config, dataset)
    model = build_model(config, dataset).to(dev, memory_format=torch.channels_last)
    optimizer = method.optimizer(model, config)
    precision = training_precision(config.train, dev)
    out = []
    for step in steps:
        t0 = time.perf_counter()
        rng = np.random.default_rng([config.train.seed, int(step)])
        gen = torch.Generator(device="cpu").manual_seed(int(step))
        batch = make_batch(draw, dataset, config, rng, int(step), dev)
        with step_autocast(precision, dev):  # as `train` runs its steps
            loss, _ = method.loss(model, batch, config, gen, int(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


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
    validate(config)
    method = config.method
    t = config.train
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / rundir.CONFIG).exists():
        rundir.write_config(run_dir, config)
    elif rundir.read_config(run_dir).run_id != config.run_id:
        raise DataError(f"{run_dir / rundir.CONFIG} describes another run than {config.run_id}; "
                        "the folder was edited or copied: delete it and submit the run again")
    rundir.clean_temp_files(run_dir)
    dev = pick_device(device)
    dataset = data_sources.load_for(config.data)
    method.check(config, dataset)
    draw = method.batcher(config, dataset)

    torch.manual_seed(t.seed)
    # channels-last: oneDNN (CPU) and cuDNN (GPU) convolutions run faster in it; measured
    # 1.4-2.5x per training step on a 2-core CPU for these encoders.
    model = build_model(config, dataset).to(dev, memory_format=torch.channels_last)
    optimizer = method.optimizer(model, config)
    base_lrs = [g["lr"] for g in optimizer.param_groups]  # before a resume overwrites them
    scheduled = t.lr_schedule != "constant" or t.warmup_steps > 0

    start = 0
    ckpt_path = rundir.checkpoint_path(run_dir)
    if ckpt_path.exists():
        ckpt = rundir.load_checkpoint(ckpt_path)
        _check_checkpoint(ckpt, config, ckpt_path)
        if "optimizer" not in ckpt:
            raise DataError(f"checkpoint {ckpt_path} holds weights only (a shipped run's); "
                            "training cannot resume from it: delete it to retrain the run")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
    rundir.rewind_log(run_dir, start)

    # Evaluations embed held-out test images where the source has a test split (MNIST).
    split = data_sources.eval_split(config.data)
    probe_ds = dataset if split == "train" else data_sources.load_for(config.data, split)
    probe_idx = probe_indices(probe_ds, t.probe_size)
    probe_images = probe_ds.images(probe_idx)  # (P, H, W, C) uint8, kept for every snapshot
    probe_factors = probe_ds.factors(probe_idx)

    def snapshot(step: int) -> None:
        codes = encode_all(model, config, probe_images, dev)
        rundir.save_snapshot(run_dir, step, codes, probe_idx, probe_factors, split=split)

    # A kill between a checkpoint and its snapshot loses that snapshot: write it again.
    have = set(rundir.snapshot_steps(run_dir))
    if start not in have and (start == 0 or start % t.snapshot_every == 0 or start == t.steps):
        snapshot(start)  # step 0: the untrained network, the baseline every figure shows
    precision = training_precision(t, dev)
    if start >= t.steps:
        _finish(run_dir, config, model, dataset, dev, None, 0, 0.0, precision)
        return {"status": "done", "step": start, "reason": None}

    t0, step = time.perf_counter(), start
    steps_done_here = 0
    loss_value = float("nan")
    with open(run_dir / rundir.LOG, "a") as log:
        for step in range(start + 1, t.steps + 1):
            if should_stop is not None and should_stop():
                rundir.save_checkpoint(run_dir, model, optimizer, step - 1, config)
                return {"status": "cancelled", "step": step - 1, "reason": "cancelled by user"}
            # Randomness of this step depends on (seed, step) only: resumable exactly.
            rng = np.random.default_rng([t.seed, step])
            gen = torch.Generator(device="cpu").manual_seed(t.seed * 1_000_003 + step)
            batch = make_batch(draw, dataset, config, rng, step, dev)
            with step_autocast(precision, dev):
                loss, terms = method.loss(model, batch, config, gen, step)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                reason = f"non-finite loss ({loss_value}) at step {step}"
                log.write(json.dumps({"step": step, "loss": loss_value, "event": "failed"}) + "\n")
                return {"status": "failed", "step": step - 1, "reason": reason}
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if scheduled:
                for g, lr in zip(optimizer.param_groups, base_lrs):
                    g["lr"] = lr * lr_factor(t, step)
            optimizer.step()

            steps_done_here += 1
            elapsed = time.perf_counter() - t0
            rate = steps_done_here / elapsed if elapsed > 0 else 0.0
            rec = {
                "step": step,
                "loss": loss_value,
                **{k: float(v) for k, v in terms.items()},
                "steps_per_s": rate,
                "time": time.time(),
                "eta_s": (t.steps - step) / rate if rate > 0 else None,
            }
            log.write(json.dumps(rec) + "\n")
            log.flush()
            faults.write_point("log", "after")
            # Snapshot before checkpoint: a checkpoint at step s then always has its snapshot,
            # and a kill in between only repeats steps after the previous checkpoint.
            if step % t.snapshot_every == 0 or step == t.steps:
                snapshot(step)
            if step % t.checkpoint_every == 0 or step == t.steps:
                rundir.save_checkpoint(run_dir, model, optimizer, step, config)
            if progress is not None:
                progress({**rec, "steps": t.steps})

    _finish(run_dir, config, model, dataset, dev, loss_value, steps_done_here,
            time.perf_counter() - t0, precision)
    return {"status": "done", "step": step, "reason": None}


def _finish(run_dir: Path, config: RunConfig, model, dataset, dev, loss_value, steps_here: int,
            seconds: float, precision: str) -> None:
    """What a finished run holds besides its last checkpoint and snapshot: the method's own
    evaluation (if it has one) and, last, metrics.json. A resume whose checkpoint is already
    final lands here too and writes whatever a kill prevented."""
    if rundir.read_model_eval(run_dir) is None:
        with torch.no_grad():
            model.eval()
            result = config.method.evaluate_model(model, config, dataset, dev)
            model.train()
        if result.get("scores") or result.get("images"):
            rundir.write_model_eval(run_dir, result)
    if loss_value is None and rundir.read_metrics(run_dir) is not None:
        return
    _write_metrics(run_dir, config, loss_value, steps_here, seconds, dev, precision)


def _write_metrics(run_dir: Path, config: RunConfig, loss_value, steps_here: int, seconds: float,
                   dev, precision: str) -> None:
    """metrics.json; on a resume that had nothing left to train, the last logged loss."""
    if loss_value is None:
        if rundir.read_metrics(run_dir) is not None:
            return
        losses = [r["loss"] for r in rundir.read_log(run_dir) if "loss" in r]
        loss_value = losses[-1] if losses else float("nan")
    rundir.write_metrics(run_dir, {
        "final_loss": loss_value,
        "steps": config.train.steps,
        "steps_per_s_last_session": steps_here / max(seconds, 1e-9),
        "device": str(dev),
        "precision": precision,  # the arithmetic of the training steps (TrainConfig.precision)
    })

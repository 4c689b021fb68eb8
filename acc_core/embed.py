"""Embed many images fast: the path of the whole-dataset view and of `benchmarks/bench_embed.py`.

DESIGN.md, "Analysis": embeddings are computed once per (run, step, data subset) and cached;
the networks are the ABC supplement's (S8, Tables S3/S4). A large sample (up to all 480,000
Shapes3D images) is bounded by this path's throughput, so against the plain batched forward
(autograd on, channels-first tensors, images loaded between batches) it

- runs under `torch.inference_mode` (no autograd graph, no version counters);
- keeps weights and activations channels-last, oneDNN's (and cuDNN's) fast layout; a uint8
  (n, H, W, C) batch permuted to (n, C, H, W) already has that layout, so it costs no copy;
- loads (for the procedural source: renders) the next chunk of images in a thread while the
  network embeds the current one;
- optionally computes in bfloat16 (`precision="bfloat16"`, autocast: convolutions and dense
  layers in bf16, accumulation and the returned codes in float32) where the hardware has native
  bf16 (AVX512-BF16 or AMX CPUs, recent GPUs). A departure from the float32 of training: the
  codes move by about 1% of their norm; the large view measures that deviation on the probe
  images and shows it beside its results.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

PRECISIONS = ("float32", "bfloat16")
BATCH = 512  # images per forward: large enough for oneDNN's blocking, small enough for caches
CHUNK = 4096  # images per load: rendering 4,096 images overlaps about 8 forwards


def bf16_native(device) -> bool:
    """Whether `device` computes bfloat16 natively (otherwise bf16 is emulated, and slower)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_precision(device) -> str:
    return "bfloat16" if bf16_native(device) else "float32"


def prepare(model: torch.nn.Module, device) -> torch.nn.Module:
    """The model on `device`, channels-last, in eval mode (what `embed` expects)."""
    return model.to(torch.device(device), memory_format=torch.channels_last).eval()


def load_images(dataset, indices: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, C) images as a tensor (the procedural source renders straight to one)."""
    if hasattr(dataset, "images_tensor"):
        return dataset.images_tensor(indices)
    return torch.from_numpy(np.ascontiguousarray(dataset.images(indices)))


def _as_input(images: torch.Tensor, image_size: int | None, device) -> torch.Tensor:
    """uint8 (n, H, W, C) -> float (n, C, S, S) in [0, 1], channels-last, on `device`."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    if image_size and x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="area")
    return x.contiguous(memory_format=torch.channels_last)


def embed(model, config, dataset, indices, device, *, representations=None,
          precision: str = "float32", batch: int = BATCH, chunk: int = CHUNK,
          progress: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> dict[str, np.ndarray] | None:
    """{representation: float32 (N, D)} codes of dataset images `indices` (N,), every
    representation of the run's method unless named. `model` as `prepare` returns it.
    `progress(done, total)` after each chunk; returns None when `should_stop()` turns true."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    method = config.method
    reps = [method.check_representation(r) for r in (representations or method.representations)]
    idx = np.asarray(indices, dtype=np.int64)
    dev = torch.device(device)
    out = {r: np.empty((len(idx), 0), np.float32) for r in reps}
    parts: dict[str, list[torch.Tensor]] = {r: [] for r in reps}
    starts = list(range(0, len(idx), chunk))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-load") as pool, \
            torch.inference_mode(), \
            torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        pending = pool.submit(load_images, dataset, idx[:chunk]) if starts else None
        for n, start in enumerate(starts):
            images = pending.result()
            if n + 1 < len(starts):  # the next chunk loads while this one is embedded
                nxt = starts[n + 1]
                pending = pool.submit(load_images, dataset, idx[nxt:nxt + chunk])
            for i in range(0, len(images), batch):
                x = _as_input(images[i:i + batch], config.data.image_size, dev)
                for r in reps:
                    parts[r].append(method.encode(model, x, r).float().cpu())
            if progress is not None:
                progress(min(start + chunk, len(idx)), len(idx))
            if should_stop is not None and should_stop():
                return None
    for r in reps:
        if parts[r]:
            out[r] = torch.cat(parts[r]).numpy()
    return out

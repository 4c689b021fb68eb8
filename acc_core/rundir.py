"""The one owner of a run folder's layout: file names, writers and readers.

    <run dir>/
      config.json          the run's canonical config (its hash is the run id); written first
      checkpoint.pt        {model, optimizer, step, config, run_id}, weights only, atomic
      log.jsonl            one JSON record per training step (and events)
      metrics.json         written when training ends
      snapshots/step_0000100.npz
                           embeddings of the fixed probe subset at a step: `embeddings` (the
                           method's first representation), `rep_<name>` for the others,
                           `indices`, `factors`, `step`
      eval/                cached analyses (acc_core.evaluate)
      eval/large/          the whole-dataset view's sample, its layout in acc_core.largeview
      meta.json            present only in a shipped run (pretrained/<name>/): marks it read-only

Everything else reads and writes these through this module (train, store, evaluate,
pretrained), so there is one parser of each file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from acc_core.data.base import DataError
from acc_core.paths import atomic_path, atomic_write_json

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
METRICS = "metrics.json"
META = "meta.json"  # the shipped flag
SNAPSHOTS = "snapshots"
EVAL = "eval"
_SNAPSHOT = re.compile(r"^step_(\d+)\.npz$")
REP_PREFIX = "rep_"


# ----- config and the shipped flag ------------------------------------------------------------
def read_config(run_dir: str | os.PathLike, fix: str | None = None):
    """The run's RunConfig; a clear DataError naming the file when it cannot be read, ending
    with what to do (`fix`; by default: delete the run and submit it again)."""
    if fix is None:
        fix = "delete the run and submit its settings again"
    if is_shipped(run_dir):
        fix = f"restore the folder {Path(run_dir)} from the repository or remove it"
    from acc_core.config import RunConfig

    path = Path(run_dir) / CONFIG
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(f"{path} is missing: this folder is not a run") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is unreadable ({e}); {fix}") from None
    try:
        return RunConfig.from_json(text)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataError(f"{path} is unreadable ({type(e).__name__}: {e}); {fix}") from None


def write_config(run_dir: str | os.PathLike, config) -> None:
    atomic_write_json(Path(run_dir) / CONFIG, config.to_dict())


def is_shipped(run_dir: str | os.PathLike) -> bool:
    """A shipped run (pretrained/<name>/) carries meta.json; nothing may write into it."""
    return (Path(run_dir) / META).exists()


def read_meta(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / META
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        return meta
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is missing or unreadable ({e}); restore the folder "
                        f"{Path(run_dir)} from the repository or remove it") from None


def write_meta(run_dir: str | os.PathLike, meta: dict) -> None:
    atomic_write_json(Path(run_dir) / META, meta)


# ----- checkpoints -----------------------------------------------------------------------------
def checkpoint_path(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINT


def save_checkpoint(run_dir, model, optimizer, step: int, config) -> None:
    import torch

    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": config.to_dict(),
        "run_id": config.run_id,
    }
    with atomic_path(checkpoint_path(run_dir)) as tmp:
        torch.save(state, tmp)


def checkpoint_step(run_dir) -> int | None:
    """The step of the run's last checkpoint (None without one or when it is unreadable)."""
    path = checkpoint_path(run_dir)
    if not path.exists():
        return None
    try:
        return int(load_checkpoint(path)["step"])
    except (DataError, KeyError, TypeError, ValueError):
        return None


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Weights only: a checkpoint never executes code when loaded."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated or not a checkpoint
        raise DataError(
            f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); delete it to "
            "restart the run from scratch"
        ) from None


# ----- the training log ------------------------------------------------------------------------
def _parse_line(line: str) -> dict | None:
    try:
        rec = json.loads(line)
        return rec if isinstance(rec, dict) else None
    except json.JSONDecodeError:
        # A torn record followed by a whole one on the same line: keep the whole one.
        for i in (m.start() for m in re.finditer(r"\{", line) if m.start() > 0):
            with contextlib.suppress(json.JSONDecodeError):
                rec = json.loads(line[i:])
                return rec if isinstance(rec, dict) else None
        return None


def read_log(run_dir) -> list[dict]:
    """Records of log.jsonl. A torn line (a write cut off by a crash) is skipped, keeping any
    whole record appended to it; when steps go back (a resume re-logs from its checkpoint),
    the later records replace the ones they repeat."""
    path = Path(run_dir) / LOG
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    out: list[dict] = []
    for line in lines:
        rec = _parse_line(line)
        if rec is None:
            continue
        step = rec.get("step")
        if isinstance(step, int):
            out = [r for r in out if not isinstance(r.get("step"), int) or r["step"] < step]
        out.append(rec)
    return out


def rewind_log(run_dir, step: int) -> None:
    """Keep log records up to `step` (a resumed run re-logs what came after)."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return
    keep = []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        rec = _parse_line(line)
        if rec is not None and isinstance(rec.get("step", 0), int) and rec.get("step", 0) <= step:
            keep.append(json.dumps(rec))
    with atomic_path(path) as tmp:
        tmp.write_text("".join(k + "\n" for k in keep))


def write_metrics(run_dir, metrics: dict) -> None:
    atomic_write_json(Path(run_dir) / METRICS, metrics)


def read_metrics(run_dir) -> dict | None:
    path = Path(run_dir) / METRICS
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ----- embedding snapshots ---------------------------------------------------------------------
def snapshot_path(run_dir, step: int) -> Path:
    return Path(run_dir) / SNAPSHOTS / f"step_{int(step):07d}.npz"


def snapshot_steps(run_dir) -> list[int]:
    folder = Path(run_dir) / SNAPSHOTS
    if not folder.is_dir():
        return []
    return sorted(int(m[1]) for p in folder.iterdir() if (m := _SNAPSHOT.match(p.name)))


def save_snapshot(run_dir, step: int, codes: dict[str, np.ndarray], indices, factors,
                  *, compressed: bool = False, half: bool = False, split: str = "train") -> None:
    """`codes`: representation name -> (P, D) array, the first being the default one;
    `indices` index the dataset's `split` ("train", or "test" for held-out images)."""
    names = list(codes)
    arrays = {"embeddings": codes[names[0]]}
    arrays.update({REP_PREFIX + n: codes[n] for n in names[1:]})
    if half:  # shipped runs: float16 codes and int8 factors keep pretrained/ small
        arrays = {k: v.astype(np.float16) for k, v in arrays.items()}
        factors = np.asarray(factors).astype(np.int8)
    arrays.update(indices=np.asarray(indices), factors=np.asarray(factors), step=np.int64(step))
    if split != "train":  # absent means "train": the snapshots of every earlier run
        arrays["split"] = np.asarray(split)
    with atomic_path(snapshot_path(run_dir, step)) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)


def load_snapshot(run_dir, step: int) -> dict:
    """{embeddings (P, E) float32, rep_<name> ..., indices (P,) int64, factors (P, K) int64,
    step}; a DataError naming the file when it is missing or unreadable."""
    path = snapshot_path(run_dir, step)
    if not path.exists():
        have = snapshot_steps(run_dir)
        raise ValueError(f"run folder {Path(run_dir).name} has no snapshot at step {step}; "
                         f"available steps: {', '.join(map(str, have)) or 'none yet'}")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        for k in list(out):
            if k == "embeddings" or k.startswith(REP_PREFIX):
                out[k] = out[k].astype(np.float32, copy=False)
        out["factors"] = out["factors"].astype(np.int64, copy=False)
        out["indices"] = out["indices"].astype(np.int64, copy=False)
        out["split"] = str(out["split"]) if "split" in out else "train"
        return out
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"snapshot {path} is unreadable ({type(e).__name__}: {e}); delete it "
                        "(training writes it again if the run is resumed)") from None


def snapshot_codes(snap: dict, representation: str, representations: tuple[str, ...]) -> np.ndarray:
    """The (P, D) codes of one representation from a loaded snapshot."""
    if representation == representations[0]:
        return snap["embeddings"]
    key = REP_PREFIX + representation
    if key not in snap:
        raise ValueError(f"this snapshot has no {representation!r} codes; it has: "
                         + ", ".join([representations[0]] + [k[len(REP_PREFIX):] for k in snap
                                                             if k.startswith(REP_PREFIX)]))
    return snap[key]


MODEL_EVAL = "model_eval.json"  # in eval/: Method.evaluate_model's scores
PACKED_EVAL = "cache.json"  # in eval/ of a shipped run: its small JSON caches in one file
MODEL_IMAGES = "model_images.npz"  # in eval/: its images


def write_model_eval(run_dir, result: dict) -> None:
    d = eval_dir(run_dir)
    images = {k: np.asarray(v) for k, v in (result.get("images") or {}).items()}
    with atomic_path(d / MODEL_IMAGES) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **images)
    atomic_write_json(d / MODEL_EVAL, result.get("scores") or {})  # last: marks it complete


def read_model_eval(run_dir) -> dict | None:
    """{"scores": ..., "images": {...}} or None when the run has none (yet)."""
    d = eval_dir(run_dir)
    try:
        scores = json.loads((d / MODEL_EVAL).read_text())
        with np.load(d / MODEL_IMAGES, allow_pickle=False) as z:
            images = {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"the method evaluation in {d} is unreadable ({e}); delete "
                        f"{MODEL_EVAL} and {MODEL_IMAGES} to compute them again") from None
    return {"scores": scores, "images": images}


def eval_dir(run_dir) -> Path:
    return Path(run_dir) / EVAL


def clean_temp_files(run_dir) -> int:
    """Remove the temp files of writes a kill interrupted, in every folder of the run."""
    from acc_core.paths import remove_stale_temp_files

    return sum(remove_stale_temp_files(f) for f in (Path(run_dir), Path(run_dir) / SNAPSHOTS,
                                                    Path(run_dir) / EVAL))

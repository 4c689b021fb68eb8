"""Exports of a run's codes to the tools people already use: pandas (parquet, csv) and
TensorBoard's embedding projector (DESIGN.md, "Layout": export.py).

One row per image of the run's probe subset at a snapshot step (`sample="probe"`, what every
page shows), or of the large sample the whole-dataset view embedded (`sample="large"`,
`acc_core.largeview`, final step only). Codes are those the analyses see: one representation
of the run's method, unit rows for cosine runs (`acc_core.runview.embeddings`).

- parquet / csv columns: `image_index` (into the dataset's `split`), `split`, then for every
  generative factor `<factor>` (value index), `<factor>_value` (the real value, from the
  dataset's `factor_values`) and `<factor>_label` (as the pages print it), then the code
  `<representation>_00`, `<representation>_01`, ... Parquet also carries the run id, step,
  representation and sample in its schema metadata (key `acc_explorer`).
- tensorboard: a folder that `tensorboard --logdir FOLDER` opens in its Projector tab as is:
  `tensors.tsv` (one code per line), `metadata.tsv` (a header row, then the image index, split
  and every factor's label), `sprite.png` (every image in a square grid) and
  `projector_config.pbtxt`, written with the tensorboard package's own `ProjectorConfig`
  proto. The projector's limits are respected and what was cut is said: at most 100,000
  points (a fixed random subset beyond that) and a sprite of at most 8,192 px a side
  (thumbnails shrink to fit; points are cut only if they would fall below 8 px).

Shipped runs are read where they are; nothing is ever written under pretrained/.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acc_core import rundir, runview
from acc_core.paths import pretrained_dir

FORMATS = ("parquet", "csv", "tensorboard")
SAMPLES = ("probe", "large")
MAX_POINTS = 100_000  # the projector loads at most this many points
MAX_SPRITE_PX = 8_192  # ... and a sprite of at most this many pixels a side
MIN_THUMB_PX = 8  # below this a thumbnail shows nothing: cut points instead
CUT_SEED = 0
EXPLORE_EXTRA = "pip install 'acc-explorer[explore]'"


@dataclass(frozen=True)
class Export:
    """What an export wrote: `path` is the file (parquet, csv) or folder (tensorboard)."""

    format: str
    path: Path
    rows: int  # rows (points) written
    total: int  # rows before any cut
    notes: tuple[str, ...]  # what was cut or shrunk, in words
    seconds: float


def require(module: str, package: str | None = None):
    """Import an optional package, or fail with the one line that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{package or module} is not installed; {EXPLORE_EXTRA}") from None


# ----- what is exported -------------------------------------------------------------------------
def run_name(run) -> str:
    """A shipped run's name, else the run id (file names say which run they hold)."""
    d, cfg = runview._run(run)
    if rundir.is_shipped(d):
        return str(rundir.read_meta(d).get("name") or d.name)
    return cfg.run_id


def codes(run, step="final", rep=None, sample: str = "probe") -> dict:
    """{u (N, D), indices (N,), factors (N, K), split, step, rep, run_id, dataset}."""
    if sample not in SAMPLES:
        raise ValueError(f"unknown sample {sample!r}; valid: {', '.join(SAMPLES)}")
    _, cfg = runview._run(run)
    if sample == "large":
        from acc_core import largeview

        e = largeview.embeddings(run, rep)
        if step not in ("final", None) and int(step) != e["step"]:
            raise ValueError(f"the large sample is of the final step {e['step']} only; drop "
                             "--step or export the probe sample")
    else:
        e = runview.embeddings(run, step, rep)
    return {**e, "run_id": cfg.run_id, "dataset": runview.dataset(run)}


def table(run, step="final", rep=None, sample: str = "probe"):
    """The export as a pandas DataFrame, one row per image (columns: the module docstring)."""
    import pandas as pd

    c = codes(run, step, rep, sample)
    ds, f = c["dataset"], c["factors"]
    cols: dict = {"image_index": c["indices"].astype(np.int64),
                  "split": np.full(len(f), c["split"], dtype=object)}
    for k, name in enumerate(ds.factor_names):
        values = np.asarray(ds.factor_values[k])
        cols[name] = f[:, k].astype(np.int64)
        cols[f"{name}_value"] = values[f[:, k]]
        cols[f"{name}_label"] = np.asarray([str(x) for x in ds.value_labels[k]], dtype=object)[f[:, k]]
    width = max(2, len(str(c["u"].shape[1] - 1)))
    for j in range(c["u"].shape[1]):
        cols[f"{c['rep']}_{j:0{width}d}"] = c["u"][:, j].astype(np.float32)
    df = pd.DataFrame(cols)
    df.attrs = {"run_id": c["run_id"], "step": int(c["step"]), "representation": c["rep"],
                "sample": sample, "source": ds.name}
    return df


def file_stem(run, step="final", rep=None, sample: str = "probe") -> str:
    _, cfg = runview._run(run)
    rep = cfg.method.check_representation(rep)
    if sample == "large":
        from acc_core import largeview

        s = largeview.manifest(run)["step"]
    else:
        s = runview._step(run, step)
    return f"{run_name(run)}-step{s}-{rep}" + ("-large" if sample == "large" else "")


# ----- writing ----------------------------------------------------------------------------------
def _check_out(out: Path) -> Path:
    out = Path(out).expanduser().resolve()
    shipped = pretrained_dir().resolve()
    if out == shipped or shipped in out.parents or any(rundir.is_shipped(p) for p in
                                                       (out, *out.parents)):
        raise ValueError(f"{out} is inside the shipped runs' folder {shipped}, which is "
                         "read-only; pass --out a folder elsewhere")
    return out


def parquet_bytes(df) -> bytes:
    pa = require("pyarrow")
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(df, preserve_index=False)
    t = t.replace_schema_metadata({**(t.schema.metadata or {}),
                                   b"acc_explorer": json.dumps(df.attrs).encode()})
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def csv_bytes(df) -> bytes:
    return df.to_csv(index=False).encode()  # shortest round-trip repr of each value


def write(run, fmt: str, out=".", step="final", rep=None, sample: str = "probe") -> Export:
    """Write one export into folder `out` (created); returns what was written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    t0 = time.perf_counter()
    out = _check_out(Path(out))
    stem = file_stem(run, step, rep, sample)
    if fmt == "tensorboard":
        res = tensorboard(run, out / f"{stem}-tensorboard", step, rep, sample)
        return Export(fmt, res.path, res.rows, res.total, res.notes, time.perf_counter() - t0)
    if fmt == "parquet":
        require("pyarrow")
    df = table(run, step, rep, sample)
    path = out / f"{stem}.{fmt}"
    out.mkdir(parents=True, exist_ok=True)
    from acc_core.paths import atomic_write_bytes

    atomic_write_bytes(path, parquet_bytes(df) if fmt == "parquet" else csv_bytes(df))
    return Export(fmt, path, len(df), len(df), (), time.perf_counter() - t0)


def projector_plan(n: int, image_px: int) -> dict:
    """How many points the projector gets and the thumbnail size: {points, thumb, grid,
    notes}. At most MAX_POINTS points; a grid of ceil(sqrt(points)) thumbnails a side fits
    MAX_SPRITE_PX, shrinking thumbnails first and cutting points only below MIN_THUMB_PX."""
    notes = []
    points = min(n, MAX_POINTS)
    if points < n:
        notes.append(f"kept {points:,} of {n:,} points (a fixed random subset, seed {CUT_SEED}): "
                     f"the projector loads at most {MAX_POINTS:,}")
    thumb = min(image_px, MAX_SPRITE_PX // max(1, math.ceil(math.sqrt(points))))
    if thumb < MIN_THUMB_PX:
        fit = (MAX_SPRITE_PX // MIN_THUMB_PX) ** 2
        notes.append(f"kept {fit:,} of {points:,} points so that {MIN_THUMB_PX} px thumbnails "
                     f"fit the sprite's {MAX_SPRITE_PX:,} px limit")
        points, thumb = fit, MIN_THUMB_PX
    if thumb < image_px:
        notes.append(f"sprite thumbnails are {thumb} px instead of the images' {image_px} px, "
                     f"so that {points:,} of them fit the sprite's {MAX_SPRITE_PX:,} px limit")
    return {"points": points, "thumb": thumb, "grid": max(1, math.ceil(math.sqrt(points))),
            "notes": notes}


def tensorboard(run, folder, step="final", rep=None, sample: str = "probe") -> Export:
    """The TensorBoard projector's folder (the module docstring); returns what was written."""
    require("tensorboard")
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    t0 = time.perf_counter()
    folder = _check_out(Path(folder))
    c = codes(run, step, rep, sample)
    ds, n = c["dataset"], len(c["indices"])
    plan = projector_plan(n, int(ds.image_shape[0]))
    keep = np.arange(n)
    if plan["points"] < n:
        keep = np.sort(np.random.default_rng(CUT_SEED).choice(n, plan["points"], replace=False))
    u, idx, f = c["u"][keep], c["indices"][keep], c["factors"][keep]
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "tensors.tsv", u, delimiter="\t", fmt="%.6g")
    labels = [np.asarray([str(x).replace("\t", " ") for x in ds.value_labels[k]])
              for k in range(len(ds.factor_names))]
    with open(folder / "metadata.tsv", "w") as fh:
        fh.write("\t".join(["image_index", "split", *ds.factor_names]) + "\n")
        for i in range(len(idx)):
            fh.write("\t".join([str(int(idx[i])), c["split"],
                                *(labels[k][f[i, k]] for k in range(len(labels)))]) + "\n")
    write_sprite(ds, idx, plan["thumb"], plan["grid"], folder / "sprite.png")
    config = ProjectorConfig()
    emb = config.embeddings.add()
    emb.tensor_name = f"{run_name(run)} {c['rep']} step {c['step']} ({sample})"
    emb.tensor_path, emb.metadata_path = "tensors.tsv", "metadata.tsv"
    emb.tensor_shape.extend([len(idx), int(u.shape[1])])
    emb.sprite.image_path = "sprite.png"
    emb.sprite.single_image_dim.extend([plan["thumb"], plan["thumb"]])
    (folder / "projector_config.pbtxt").write_text(text_format.MessageToString(config))
    return Export("tensorboard", folder, len(idx), n, tuple(plan["notes"]),
                  time.perf_counter() - t0)


def write_sprite(ds, indices: np.ndarray, thumb: int, grid: int, path: Path,
                 chunk: int = 4096) -> None:
    """Every image of `indices`, `thumb` px, row by row in a `grid` x `grid` PNG (white
    beyond the last image, as the projector expects)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image

    sheet = np.full((grid * thumb, grid * thumb, 3), 255, np.uint8)
    for start in range(0, len(indices), chunk):
        ims = np.asarray(ds.images(indices[start:start + chunk]))  # (c, H, W, C) uint8
        if ims.shape[-1] == 1:
            ims = np.repeat(ims, 3, axis=-1)
        if ims.shape[1] != thumb:
            x = torch.from_numpy(ims).permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(thumb, thumb), mode="area")
            ims = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for j, im in enumerate(ims):
            r, col = divmod(start + j, grid)
            sheet[r * thumb:(r + 1) * thumb, col * thumb:(col + 1) * thumb] = im
    Image.fromarray(sheet).save(path, optimize=False)


def zip_folder(folder) -> bytes:
    """A folder's files in one zip (the app's download of a TensorBoard export)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, f"{folder.name}/{p.relative_to(folder)}")
    return buf.getvalue()

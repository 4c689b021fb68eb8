"""Exports (acc_core.export): a shipped run in each format, read back with pandas and with the
tensorboard package's own projector config and server; the projector's limits; read-only
pretrained/."""

from __future__ import annotations

import math
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from acc_core import export, runview
from acc_core.cli import main as acc
from acc_core.paths import pretrained_dir

RUN = "shapes3d-wall-hue"
# the shipped run's last step and render size (its quick preset's): what the exports carry
STEP = runview._run(RUN)[1].train.steps
SIZE = runview._run(RUN)[1].data.image_size


def _tree(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def shipped_before():
    return _tree(pretrained_dir() / RUN)


def check_table(df: pd.DataFrame, e: dict, ds) -> None:
    assert len(df) == len(e["indices"]) == 1000
    assert (df["image_index"].to_numpy() == e["indices"]).all()
    assert set(df["split"]) == {"train"}
    for k, name in enumerate(ds.factor_names):
        assert (df[name].to_numpy() == e["factors"][:, k]).all()
        np.testing.assert_allclose(df[f"{name}_value"].to_numpy(dtype=float),
                                   np.asarray(ds.factor_values[k], dtype=float)[e["factors"][:, k]])
        assert str(df[f"{name}_label"].iloc[0]) == str(ds.value_labels[k][e["factors"][0, k]])
    codes = df[[f"embedding_{j:02d}" for j in range(e["u"].shape[1])]].to_numpy()
    np.testing.assert_allclose(codes, e["u"], rtol=1e-6, atol=1e-6)


def test_a_shipped_run_exports_to_parquet_and_csv_and_reads_back(tmp_path, shipped_before):
    e = runview.embeddings(RUN, "final")
    ds = runview.dataset(RUN)
    pq = export.write(RUN, "parquet", tmp_path)
    csv = export.write(RUN, "csv", tmp_path)
    assert pq.path.name == f"shapes3d-wall-hue-step{STEP}-embedding.parquet" and pq.rows == 1000
    check_table(pd.read_parquet(pq.path), e, ds)
    check_table(pd.read_csv(csv.path), e, ds)
    import pyarrow.parquet as papq

    meta = papq.read_schema(pq.path).metadata[b"acc_explorer"]
    assert f'"step": {STEP}'.encode() in meta and b'"representation": "embedding"' in meta
    assert _tree(pretrained_dir() / RUN) == shipped_before  # read where it is, never written


def test_a_shipped_run_exports_to_the_tensorboard_projector(tmp_path, shipped_before):
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    res = export.write(RUN, "tensorboard", tmp_path)
    config = text_format.Parse((res.path / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (emb,) = config.embeddings
    tensors = np.loadtxt(res.path / emb.tensor_path, delimiter="\t")
    meta = (res.path / emb.metadata_path).read_text().splitlines()
    assert meta[0].split("\t") == ["image_index", "split", *runview.dataset(RUN).factor_names]
    assert tensors.shape == tuple(emb.tensor_shape) == (1000, 64) == (len(meta) - 1, 64)
    np.testing.assert_allclose(tensors, runview.embeddings(RUN)["u"], rtol=1e-5, atol=1e-5)
    sprite = Image.open(res.path / emb.sprite.image_path)
    thumb = tuple(emb.sprite.single_image_dim)
    assert thumb == (SIZE, SIZE)  # the images' own size: 1,000 of them fit 8,192 px
    side = math.ceil(math.sqrt(1000)) * SIZE
    assert sprite.size == (side, side) and max(sprite.size) <= export.MAX_SPRITE_PX
    assert res.notes == ()
    assert _tree(pretrained_dir() / RUN) == shipped_before


def test_the_projector_limits_cut_points_and_shrink_thumbnails():
    whole = export.projector_plan(480_000, 64)
    assert whole["points"] == 100_000 and whole["grid"] == 317
    assert whole["thumb"] == 8192 // 317 == 25 and whole["grid"] * whole["thumb"] <= 8192
    assert any("kept 100,000 of 480,000" in n for n in whole["notes"])
    assert any("25 px instead of the images' 64 px" in n for n in whole["notes"])
    small = export.projector_plan(1000, 64)
    assert (small["points"], small["thumb"], small["notes"]) == (1000, 64, [])


def test_a_cut_export_says_what_was_cut_and_stays_consistent(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(export, "MAX_POINTS", 300)
    monkeypatch.setattr(export, "MAX_SPRITE_PX", 256)
    res = export.write(RUN, "tensorboard", tmp_path)
    assert (res.rows, res.total) == (300, 1000)
    assert any("kept 300 of 1,000" in n for n in res.notes)
    assert any(f"14 px instead of the images' {SIZE} px" in n for n in res.notes)
    meta = (res.path / "metadata.tsv").read_text().splitlines()
    assert len(meta) == 301 == len((res.path / "tensors.tsv").read_text().splitlines()) + 1
    assert Image.open(res.path / "sprite.png").size == (18 * 14, 18 * 14)


def test_tensorboard_serves_the_export(tmp_path):
    """TensorBoard's own projector plugin reads the folder as written."""
    res = export.write(RUN, "tensorboard", tmp_path)
    from tensorboard import program

    tb = program.TensorBoard()
    tb.configure(argv=[None, "--logdir", str(res.path), "--host", "127.0.0.1", "--port", "0"])
    url = tb.launch()
    name = urllib.parse.quote(f"shapes3d-wall-hue embedding step {STEP} (probe)")

    def get(what: str) -> bytes:
        with urllib.request.urlopen(f"{url}data/plugin/projector/{what}", timeout=30) as r:
            return r.read()

    assert b"sprite.png" in get("info?run=.")
    assert len(get(f"tensor?run=.&name={name}")) == 1000 * 64 * 4  # float32 rows
    assert len(get(f"metadata?run=.&name={name}").decode().splitlines()) == 1001
    assert get(f"sprite_image?run=.&name={name}")[:4] == b"\x89PNG"


def test_any_representation_of_a_light_shipped_run(tmp_path):
    res = export.write("shapes3d-wall-hue-lord", "csv", tmp_path, rep="class")
    df = pd.read_csv(res.path)
    e = runview.embeddings("shapes3d-wall-hue-lord", "final", "class")
    cols = [c for c in df.columns if c.startswith("class_")]
    assert len(cols) == e["u"].shape[1] and res.path.name.endswith("-class.csv")
    np.testing.assert_allclose(df[cols].to_numpy(), e["u"], rtol=1e-5, atol=1e-6)


def test_nothing_is_written_under_pretrained(tmp_path, shipped_before):
    for out in (pretrained_dir() / RUN / "eval", pretrained_dir(), pretrained_dir() / "new"):
        with pytest.raises(ValueError, match="read-only"):
            export.write(RUN, "csv", out)
    assert _tree(pretrained_dir() / RUN) == shipped_before
    assert not (pretrained_dir() / "new").exists()


def test_the_cli(tmp_path, capsys):
    assert acc(["export", RUN, "--format", "parquet", "--step", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wrote 1,000 rows" in out and (tmp_path / f"{RUN}-step0-embedding.parquet").exists()
    assert acc(["export", RUN, "--format", "csv", "--sample", "large", "--out", str(tmp_path)]) == 2
    assert "no large sample yet" in capsys.readouterr().err

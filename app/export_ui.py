"""Download buttons for a run's codes (acc_core.export): parquet and csv for pandas, a zipped
folder for TensorBoard's projector. Files are built only when a button is clicked."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from acc_core import export


def _tensorboard_zip(rec, step, rep, sample) -> bytes:
    """The projector folder, written to a temporary folder and zipped."""
    with tempfile.TemporaryDirectory(prefix="acc-export-") as tmp:
        folder = Path(tmp) / f"{export.file_stem(rec, step, rep, sample)}-tensorboard"
        return export.zip_folder(export.tensorboard(rec, folder, step, rep, sample).path)


def _missing(module: str) -> str | None:
    try:
        export.require(module)
        return None
    except ValueError as e:
        return str(e)


def downloads(rec, step="final", rep=None, sample: str = "probe", *, key: str = "x") -> None:
    """An "Export" expander: the codes of `sample` at `step` as parquet, csv or TensorBoard."""
    what = ("the large sample's" if sample == "large" else "the probe subset's")
    with st.expander(f"Export {what} codes (parquet, csv, TensorBoard projector)"):
        stem = export.file_stem(rec, step, rep, sample)
        st.caption("One row per image: the code's columns, every factor (value index, real "
                   "value, label), the image index and the split. The TensorBoard folder "
                   "(unzip it, then `tensorboard --logdir FOLDER`, Projector tab) holds at "
                   "most 100,000 points and a sprite of at most 8,192 px a side; the same "
                   "from the command line: `acc export RUN --format parquet|csv|tensorboard`.")
        row = st.container(horizontal=True, gap="small")
        no_pq, no_tb = _missing("pyarrow"), _missing("tensorboard")
        row.download_button(
            "Parquet", data=lambda: export.parquet_bytes(export.table(rec, step, rep, sample)),
            file_name=f"{stem}.parquet", mime="application/vnd.apache.parquet",
            key=f"x_pq_{key}", icon=":material/download:", on_click="ignore",
            disabled=no_pq is not None, help=no_pq)
        row.download_button(
            "CSV", data=lambda: export.csv_bytes(export.table(rec, step, rep, sample)),
            file_name=f"{stem}.csv", mime="text/csv", key=f"x_csv_{key}",
            icon=":material/download:", on_click="ignore")
        row.download_button(
            "TensorBoard (zip)", data=lambda: _tensorboard_zip(rec, step, rep, sample),
            file_name=f"{stem}-tensorboard.zip", mime="application/zip", key=f"x_tb_{key}",
            icon=":material/download:", on_click="ignore", disabled=no_tb is not None,
            help=no_tb)

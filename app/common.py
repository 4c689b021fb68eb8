"""Shared helpers for the app's pages: the run store, cached analyses, run pickers, images.

Views stay thin (DESIGN.md, "Layout"): every number comes from `acc_core` (the run store,
and `acc_core.evaluate`, which also caches on disk in the run directory); figures are built
in `figures.py`, the live view of a run in `watcher.py`. Here the acc_core calls are wrapped
once more in Streamlit's in-memory caches so that changing a coloured factor or a noise
scale redraws in well under a second. Cached functions take the store root and the
run id (plain strings) rather than records, so two stores (e.g. two test homes) never share
an entry, and a run directory is found again from its id.
"""

from __future__ import annotations

import functools
import time
import traceback

import numpy as np
import streamlit as st

from acc_core import estimate, evaluate
from acc_core.data import DataError
from acc_core.paths import acc_home

# Markdown icons (Streamlit ships the Material Symbols font, so they render everywhere).
STATUS_ICONS = {"queued": ":material/hourglass_empty:", "running": ":material/directions_run:",
                "done": ":material/check_circle:", "failed": ":material/error:",
                "interrupted": ":material/pause_circle:", "cancelled": ":material/cancel:"}
LIVE = ("queued", "running", "interrupted")  # a worker will still move these forward


# ----- pages ---------------------------------------------------------------------------
def run_page(body) -> None:
    """Run a page body; a user-fixable error or a bug becomes one short message, no traceback.

    Streamlit's own control flow (st.rerun, st.stop, st.switch_page) derives from
    BaseException, so it passes through untouched.
    """
    try:
        body()
    except DataError as e:
        st.error(str(e))
    except ValueError as e:
        st.warning(str(e))
    except Exception as e:  # a bug: say what and where, keep the page alive
        where = traceback.extract_tb(e.__traceback__)[-1]
        st.error(f"This page hit an unexpected error: {type(e).__name__}: {e} "
                 f"(in {where.name}, {where.filename.rsplit('/', 1)[-1]}:{where.lineno}).")


def guard(fn):
    """`run_page` for a function that runs on its own, e.g. a fragment's rerun."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        run_page(lambda: fn(*args, **kwargs))
    return wrapper


# ----- the run store -------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _store(root: str):
    from acc_core.store import RunStore

    return RunStore(root)


def share_text(x: float) -> str:
    """A share as a percentage that is never rounded up to a whole: 0.996 -> '99.6%',
    0.99996 -> '99.9%' (not '100.0%'); 100% only when it is all."""
    import math

    if x >= 1.0:
        return "100%"
    return f"{math.floor(max(x, 0.0) * 1000) / 10:.1f}%"


def scenario_text(c) -> str:
    """A run's weak supervision in words, for labels: what is held fixed within set A and B."""
    if c.method.supervision == "none":
        return "no supervision"
    a = ", ".join(c.set_a.inactive)
    b = ", ".join(c.set_b.inactive)
    if not a and not b:
        return "no factor held fixed"
    if a == b:
        return f"inactive in A and B: {a}"
    return f"inactive in A: {a or 'none'} · B: {b or 'unconstrained (a random sample)'}"


def root() -> str:
    return str(acc_home())


def store():
    return _store(root())


def list_runs(status=None, *, reap: bool = True) -> list:
    """All runs, newest first, pretrained included; runs of a dead worker become interrupted."""
    s = store()
    if reap:
        s.reap_dead()
    runs = s.list_runs(include_pretrained=True)
    if status is not None:
        wanted = (status,) if isinstance(status, str) else tuple(status)
        runs = [r for r in runs if r.status in wanted]
    runs, unreadable = readable(runs)
    if unreadable:  # one broken run never blanks a page: it is named, the others show
        st.warning(f"{len(unreadable)} run(s) cannot be read and are left out: " + "; ".join(
            f"`{r.run_id}`: {reason}" for r, reason in unreadable[:5]))
    # the shipped seed copies (behind the across-seeds plots) after everything else
    return sorted(runs, key=is_seed_copy)  # stable: the store's order otherwise


def readable(runs: list) -> tuple[list, list]:
    """(runs whose config parses, [(run, reason)] for the others)."""
    good, bad = [], []
    for r in runs:
        try:
            r.config
            good.append(r)
        except DataError as e:
            bad.append((r, str(e)))
    return good, bad


def is_seed_copy(r) -> bool:
    """A shipped extra seed of a pretrained scenario (named '<scenario>-seedN')."""
    import re

    return r.source == "pretrained" and bool(re.search(r"-seed\d+$", r.label or ""))


def get_run(run_id: str):
    return store().get(run_id)


def run_label(r, *, status: bool = True) -> str:
    """'DONE · <label> · <id>'. Without the status for a widget that outlives a status change
    (a selectbox keeps showing the label its option had when first drawn)."""
    name = r.label or r.config.describe()
    origin = "pretrained · " if r.source == "pretrained" else ""
    head = f"{r.status.upper()} · " if status else ""
    return f"{head}{name} · {origin}{r.run_id[:8]}"


def pick_run(runs: list, *, key: str, label: str = "Run", help: str | None = None):
    """A run selectbox that remembers the last choice across pages (session state)."""
    if not runs:
        st.info("No finished runs yet. Launch one on the **Train** page (the quick preset "
                "takes a few minutes on a laptop CPU), then come back.")
        return None
    ids = [r.run_id for r in runs]
    by_id = {r.run_id: r for r in runs}
    last = st.session_state.get("selected_run")
    choice = st.selectbox(label, ids, index=ids.index(last) if last in ids else 0,
                          format_func=lambda i: run_label(by_id[i]), key=key, help=help)
    st.session_state["selected_run"] = choice
    return by_id[choice]


def inactive_factors(config) -> list[str]:
    """Factors held fixed within set A or set B: these are the ones ACC should drop."""
    return sorted(set(config.set_a.inactive) | set(config.set_b.inactive))


def runs_table(runs: list):
    import pandas as pd

    rows = [{
        "status": r.status,
        "run": r.label or r.config.describe(),
        "inactive in A": ", ".join(r.config.set_a.inactive) or "none (random sample)",
        "inactive in B": ", ".join(r.config.set_b.inactive) or "none (random sample)",
        "progress": (r.step / r.steps) if r.steps else 0.0,
        "from": r.source,
        "id": r.run_id[:8],
        "note": r.reason or (r.description if r.source == "pretrained" else "") or "",
    } for r in runs]
    return pd.DataFrame(rows)


# ----- datasets and images ---------------------------------------------------------------
@st.cache_resource(show_spinner="Loading dataset…")
def dataset(source: str, image_size: int | None = None, split: str = "train"):
    """The dataset a run trained on (raises DataError with how-to-get-it when missing)."""
    from acc_core import data as data_sources
    from acc_core.config import DataConfig

    return data_sources.load_for(DataConfig(source=source, image_size=image_size), split)


@st.cache_data(show_spinner=False, max_entries=256)
def run_split(root_: str, run_id: str, version: int) -> str:
    """The split a run's snapshots embed: "test" (held-out images) for MNIST."""
    return evaluate.split(record(root_, run_id))


def run_dataset(r):
    """The dataset whose images the run's snapshots (and so every page) index."""
    return dataset(r.config.data.source, r.config.data.image_size,
                   run_split(root(), r.run_id, r.step))


@st.cache_data(show_spinner=False, max_entries=256)
def images(source: str, image_size: int | None, indices: tuple[int, ...], size: int = 72,
           split: str = "train"):
    """uint8 (n, size, size, 3) display copies, upscaled with nearest neighbours."""
    from PIL import Image

    raw = dataset(source, image_size, split).images(np.asarray(indices, dtype=np.int64))
    out = []
    for im in raw:
        if im.shape[-1] == 1:
            im = np.repeat(im, 3, axis=-1)
        out.append(np.asarray(Image.fromarray(im).resize((size, size), Image.NEAREST)))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def show_images(source, image_size, indices, captions=None, *, size: int = 72, width: int = 84,
                split: str = "train"):
    """A wrapping grid of images with captions (st.image lays a list out left to right)."""
    indices = [int(i) for i in indices]
    if not indices:
        return
    ims = images(source, image_size, tuple(indices), size, split)
    st.image(list(ims), caption=captions, width=width)


def value_label(ds, k: int, v: int) -> str:
    return str(ds.value_labels[k][int(v)])


def value_labels(ds, k: int, values: np.ndarray) -> np.ndarray:
    """Labels of many values at once, as a numpy array (plotly takes arrays without a loop)."""
    return np.asarray([str(x) for x in ds.value_labels[k]])[np.asarray(values, dtype=np.int64)]


# ----- cached analyses (all keyed by store root + run id) ------------------------------
def record(root_: str, run_id: str):
    rec = _store(root_).get(run_id)
    if rec is None:
        raise ValueError(f"run {run_id} is not in the store at {root_}; pick another run")
    return rec


@st.cache_data(show_spinner=False, max_entries=32)
def snapshot_steps(root_: str, run_id: str, version: int) -> list[int]:
    """`version` (the run's step) makes a growing run list its new snapshots."""
    return evaluate.snapshot_steps(record(root_, run_id))


@st.cache_data(show_spinner="Projecting embeddings… (a UMAP not computed yet takes a few "
                            "seconds; the first one after the app starts compiles for about "
                            "half a minute)", max_entries=128)
def projection(root_: str, run_id: str, step, method: str = "pca", rep: str | None = None) -> dict:
    return evaluate.projection(record(root_, run_id), step, method=method, rep=rep)


@st.cache_data(show_spinner="Sweeping the noise scale…", max_entries=64)
def noise_sweep(root_: str, run_id: str, step="final", rep: str | None = None) -> dict:
    return evaluate.noise_sweep(record(root_, run_id), step, rep=rep)


@st.cache_data(show_spinner=False, max_entries=512)
def mi_at(root_: str, run_id: str, sigma: float, step="final", rep: str | None = None) -> np.ndarray:
    return evaluate.mi_at(record(root_, run_id), sigma, step, rep=rep)


@st.cache_data(show_spinner="Training probes…", max_entries=64)
def probes(root_: str, run_id: str, sigma: float | None = None, rep: str | None = None) -> dict:
    return evaluate.probes(record(root_, run_id), sigma, rep=rep)


@st.cache_data(show_spinner="Finding neighbours…", max_entries=64)
def agreement(root_: str, run_id: str, k: int = 10, rep: str | None = None) -> dict:
    return evaluate.agreement(record(root_, run_id), k, rep=rep)


@st.cache_data(show_spinner=False, max_entries=64)
def embeddings(root_: str, run_id: str, step="final", rep: str | None = None) -> dict:
    return evaluate.embeddings(record(root_, run_id), step, rep=rep)


@st.cache_data(show_spinner=False, max_entries=256)
def knn(root_: str, run_id: str, position: int, k: int, rep: str | None = None) -> dict:
    return evaluate.knn_images(record(root_, run_id), position, k, rep=rep)


@st.cache_data(show_spinner="Building the retrieval grid…", max_entries=32)
def class_grid(root_: str, run_id: str, rep: str | None = None) -> np.ndarray:
    return evaluate.class_grid(record(root_, run_id), rep=rep)


@st.cache_data(show_spinner=False, max_entries=64)
def default_sigma(root_: str, run_id: str, rep: str | None = None) -> float:
    return evaluate.default_sigma(record(root_, run_id), rep)


@st.cache_data(show_spinner=False, max_entries=64)
def noise_unit(root_: str, run_id: str, rep: str | None = None) -> dict:
    return evaluate.noise_unit(record(root_, run_id), rep)


@st.cache_data(show_spinner=False, max_entries=64)
def model_eval(root_: str, run_id: str, version: int) -> dict | None:
    return evaluate.model_eval(record(root_, run_id))


@st.cache_data(show_spinner=False, max_entries=64)
def style_measure(root_: str, run_id: str, name: str) -> np.ndarray:
    """A derived per-image measure (stroke thickness, slant) of the run's probe images."""
    from acc_core.analysis import style

    r = record(root_, run_id)
    idx = evaluate.embeddings(r, "final")["indices"]
    return style.MEASURES[name](run_dataset(r).images(idx))


def pick_representation(r, *, key: str) -> str | None:
    """A picker for runs whose method exposes several codes (LORD: content and class); None
    (the default code) otherwise. Remembered per run across pages."""
    reps = r.config.method.representations
    if len(reps) == 1:
        return None
    state = f"rep_{r.run_id}"
    last = st.session_state.get(state, reps[0])
    choice = st.selectbox("Representation", list(reps), index=list(reps).index(last)
                          if last in reps else 0, key=f"{key}_{r.run_id}",
                          help=f"{r.config.method.title} exposes several codes; each is "
                               "analysed on its own.")
    st.session_state[state] = choice
    return choice


def estimate_seconds(config_json: str) -> float:
    """Not cached here: acc_core.estimate re-measures once its figure is a minute old."""
    from acc_core.config import RunConfig

    return estimate.estimate_seconds(RunConfig.from_json(config_json))


def fmt_seconds(s: float | None) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def ago(t: float | None) -> str:
    """'5 s ago', '12 min ago', '3 h ago', '2 days ago': short enough for a metric."""
    if not t:
        return "–"
    s = max(0.0, time.time() - float(t))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            n = int(s // size)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return f"{int(s)} s ago"

"""The Embeddings page's whole-dataset view: a large sample of the run's dataset (up to all
480,000 Shapes3D images), embedded by the background worker (`acc_core.largeview`), shown in
Apple's Embedding Atlas (colour by any factor, density, search, neighbours); a lasso or box
selection comes back as a SQL predicate, which DuckDB runs on the same table to fill the image
grid the probe view has. Needs the `explore` extra (embedding-atlas, duckdb).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common
from acc_core import largeview

VIEWS = ("Probe subset", "Whole dataset")
SHOWN = 48  # images of a selection shown at once
PENDING = ("queued", "running", "interrupted")  # an interrupted job is back in the queue
# Streamlit sends the whole table to the browser on every rerun (each new selection), and
# caps a message at 200 MB: the neighbour lists, half the table, go only up to this size.
NEIGHBOURS_UP_TO = 150_000


def chosen(key: str) -> bool:
    """The view switch; True when the whole-dataset view is picked."""
    view = st.segmented_control(
        "View", VIEWS, key=key, default=VIEWS[0], required=True,
        help="The probe subset: the 1,000-2,000 images every page analyses, at every training "
             "step. The whole dataset: a large sample (up to every image) embedded once by the "
             "final network, with its UMAP and nearest neighbours.")
    return view == VIEWS[1]


def _missing() -> str | None:
    try:
        import duckdb  # noqa: F401
        import embedding_atlas.streamlit  # noqa: F401
    except ImportError:
        return ("the whole-dataset view needs Embedding Atlas and DuckDB: "
                "pip install 'acc-explorer[explore]'")
    return None


def view(rec, rep) -> None:
    st.caption("Every point is one image of a large sample of the dataset, embedded by the "
               "run's final network and placed by UMAP. Colour it by any factor with the "
               "atlas's colour menu, search the captions, and draw a lasso (or a box) to see "
               "the selected images below.")
    reason = largeview.cannot_embed(rec) or _missing()
    if reason:
        st.info(reason[0].upper() + reason[1:] + ".")
        return
    if not largeview.ready(rec):
        request_panel(rec)
        return
    atlas(rec, rep)
    import export_ui

    export_ui.downloads(rec, "final", rep, sample="large", key=f"large_{rec.run_id}_{rep}")
    with st.expander("Embed a sample of another size"):
        request_form(rec, again=True)


def request_form(rec, again: bool = False) -> None:
    total = largeview.dataset_size(rec)
    default = min(largeview.DEFAULT_SAMPLE, total)
    size = st.number_input("Sample size (images)", min_value=min(1000, total), max_value=total,
                           value=default, step=10_000, key=f"w_size_{rec.run_id}",
                           help=f"Up to every image of the dataset ({total:,}). The worker "
                                "embeds about 2,000-5,000 images/s at 32x32 on 2 CPU cores; "
                                "UMAP and the neighbours take a minute more.")
    label = "Embed again" if again else "Embed the whole dataset" if size >= total else \
        f"Embed {int(size):,} images"
    if st.button(label, key=f"w_go_{rec.run_id}", type="secondary" if again else "primary"):
        largeview.request(rec, int(size), root=common.root())
        st.rerun()


def request_panel(rec) -> None:
    p = largeview.progress(rec)
    if p and p.get("state") in PENDING:
        follow(rec.run_id)
        return
    if p and p.get("state") == "failed":
        st.error(f"The last attempt failed: {p.get('message', 'no reason recorded')}")
    st.markdown("This run's whole dataset has not been embedded yet. The background worker "
                "does it (training runs come first); you can leave the page meanwhile.")
    request_form(rec)


@st.fragment(run_every=1.0)
def follow(run_id: str) -> None:
    """The job's progress, read from its progress file once a second; the page reloads
    when the sample is ready."""
    rec = common.get_run(run_id)
    p = largeview.progress(rec) or {}
    state = p.get("state")
    if largeview.ready(rec) and state == "done":
        st.rerun()
    if state not in PENDING:
        st.rerun()
    from acc_core.worker import ensure_worker

    ensure_worker(common.root())  # a worker that died is replaced; its claim is put back
    done, total = int(p.get("done") or 0), int(p.get("total") or 0)
    text = f"{state}: {p.get('phase', '')}" + (f" ({done:,} of {total:,})" if total else "")
    st.progress(done / total if total else 0.0, text=text)


@st.cache_resource(show_spinner="Building the table…", max_entries=4)  # not copied per run
def table(root: str, run_id: str, rep: str | None, version: float):
    """(atlas frame with neighbours, query frame without): one row per image of the sample."""
    import pandas as pd

    rec = common.record(root, run_id)
    e = largeview.embeddings(rec, rep)
    ds = common.run_dataset(rec)
    labels = {n: common.value_labels(ds, k, e["factors"][:, k])
              for k, n in enumerate(ds.factor_names)}
    text = np.asarray([", ".join(f"{n} {labels[n][i]}" for n in ds.factor_names)
                       for i in range(len(e["indices"]))], dtype=object)
    frame = pd.DataFrame({"__row_index__": np.arange(len(e["indices"]), dtype=np.int64),
                          "x": e["xy"][:, 0], "y": e["xy"][:, 1],
                          "image_index": e["indices"], **labels, "text": text})
    if len(frame) > NEIGHBOURS_UP_TO:
        return frame, frame
    neighbours = [{"ids": ids.tolist(), "distances": d.tolist()}
                  for ids, d in zip(e["nn"], np.round(e["nnd"], 4))]
    return frame.assign(neighbors=neighbours), frame


def select(frame, predicate: str) -> tuple[int, np.ndarray]:
    """(how many rows match the atlas's SQL predicate, the first SHOWN row positions)."""
    import duckdb

    con = duckdb.connect(config={"enable_external_access": False})  # no file or network
    try:
        con.register("dataframe", frame)
        where = f"FROM dataframe WHERE {predicate}"
        n = con.execute(f"SELECT count(*) {where}").fetchone()[0]
        # a spread over the selection (a fixed hash order), not its first images by index
        rows = con.execute(f"SELECT __row_index__ {where} ORDER BY hash(__row_index__) "
                           f"LIMIT {SHOWN}").fetchnumpy()["__row_index__"]
    finally:
        con.close()
    return int(n), np.asarray(rows, dtype=np.int64)


def atlas(rec, rep) -> None:
    from atlas_component import embedding_atlas, offline

    if not offline():
        st.caption("This version of embedding-atlas could not be set up to run offline: the "
                   "atlas loads DuckDB-WASM from the internet (jsDelivr).")
    m = largeview.manifest(rec)
    version = (largeview.cache_dir(rec) / largeview.MANIFEST).stat().st_mtime
    shown, frame = table(common.root(), rec.run_id, rep, version)
    nb = "neighbors" if "neighbors" in shown else None
    value = embedding_atlas(shown, x="x", y="y", text="text", neighbors=nb, labels="disabled",
                            show_table=False, key=f"w_atlas_{rec.run_id}_{rep}_{version}") or {}
    st.caption(describe(m, rec, rep))
    predicate = value.get("predicate")
    if not predicate:
        st.caption("Draw a lasso or a box in the atlas (its toolbar, or shift + drag) to see "
                   "the images of a region here.")
        return
    n, rows = select(frame, predicate)
    st.metric("selected", f"{n:,}")
    if not n:
        return
    ds = common.run_dataset(rec)
    inactive = common.inactive_factors(rec.config)
    active = [n_ for n_ in ds.factor_names if n_ not in inactive] or list(ds.factor_names)
    captions = [", ".join(f"{a} {frame[a].iloc[r]}" for a in active) for r in rows]
    st.caption(f"{len(rows)} of {n:,} selected images; captions give the active factors' values.")
    common.show_images(rec.config.data.source, rec.config.data.image_size,
                       frame["image_index"].to_numpy()[rows], captions,
                       split=m.get("split", "train"))


def describe(m: dict, rec, rep) -> str:
    dev = (m.get("deviation_from_probe_snapshot") or {}).get(rep or rec.config.method.representations[0])
    whole = "every image" if m["n"] >= m["dataset_size"] else "a fixed random sample"
    s = m["seconds"]
    return (f"{m['n']:,} of the dataset's {m['dataset_size']:,} images ({whole}), embedded "
            f"by the network of step {m['step']} in {s['embed_s']:.0f} s ({m['precision']}"
            + (f"; the probe images land within {dev:.1%} of their snapshot codes" if dev is not None
               else "") + f"). UMAP of {m['fit_size']:,} of them; the others placed at the "
            "membership-weighted mean of their 10 nearest fitted points, as umap-learn's "
            "transform starts, without its refinement epochs (a departure from a full UMAP). "
            f"Neighbours: the {m['neighbours']} nearest in the code space"
            + ("." if m["n"] <= NEIGHBOURS_UP_TO else
               f", shown for samples of up to {NEIGHBOURS_UP_TO:,} images (the table goes "
               "to the browser with every selection)."))

"""Embedding Atlas's Streamlit component, working offline.

The component that `embedding-atlas` ships (`embedding_atlas.streamlit`) runs DuckDB in the
browser and fetches DuckDB-WASM from the jsDelivr CDN when it starts; without the internet
(and in the tests) it shows nothing. The same package also bundles that DuckDB-WASM build,
same version, for its stand-alone app. So this module declares a copy of the component whose
DuckDB files are served by Streamlit next to it: the component's files are copied once per
installed version into ACC_HOME/atlas-component/<version>/, with the CDN prefix replaced by
the component's own folder and DuckDB's worker and wasm files copied from the bundle. If a
later version of the package changes what is replaced, the package's own (online) component
is used, and `offline()` says so.
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

import streamlit as st

CDN = re.compile(r"`https://cdn\.jsdelivr\.net/npm/\$\{\w+\}@\$\{\w+\}/dist/`")
LOCAL = "new URL(`duckdb/`,document.baseURI).href"
DUCKDB_FILES = {  # name the component asks for <- the stand-alone app's bundled file
    "duckdb-browser-eh.worker.js": "duckdb-browser-eh.worker-*.js",
    "duckdb-eh.wasm": "duckdb-eh-*.wasm",
    "duckdb-browser-mvp.worker.js": "duckdb-browser-mvp.worker-*.js",
    "duckdb-mvp.wasm": "duckdb-mvp-*.wasm",
}


def _build(package: Path, out: Path) -> bool:
    """Write the offline copy into `out`; False if the package no longer fits the patch."""
    src = package / "widget_static" / "streamlit"
    bundle = package / "static" / "assets"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    patched = 0
    for js in (tmp / "assets").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        new, n = CDN.subn(LOCAL, text)
        if n:
            js.write_text(new, encoding="utf-8")
            patched += n
    (tmp / "duckdb").mkdir()
    for name, pattern in DUCKDB_FILES.items():
        found = sorted(bundle.glob(pattern))
        if not found:
            patched = 0
            break
        shutil.copyfile(found[0], tmp / "duckdb" / name)
    if patched != 1:
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return True


@st.cache_resource(show_spinner=False)
def _component():
    """(the component function, whether it works offline)."""
    import embedding_atlas
    import streamlit.components.v1 as components

    from acc_core.paths import acc_home

    package = Path(embedding_atlas.__file__).resolve().parent
    version = metadata.version("embedding-atlas")
    out = acc_home() / "atlas-component" / version
    try:
        ok = (out / "duckdb" / "duckdb-eh.wasm").exists() or _build(package, out)
    except OSError:
        ok = False
    if not ok:
        from embedding_atlas.streamlit import _embedding_atlas

        return _embedding_atlas, False
    return components.declare_component("acc_embedding_atlas", path=str(out)), True


def offline() -> bool:
    return _component()[1]


def embedding_atlas(data_frame, *, key=None, **options) -> dict:
    """As `embedding_atlas.streamlit.embedding_atlas` (same options, same return value: a
    dict whose "predicate" is the selection as a SQL predicate)."""
    from embedding_atlas.options import make_embedding_atlas_props

    fn, _ = _component()
    props = make_embedding_atlas_props(**options)
    return fn(data_frame=data_frame, props=props, key=key, default={})

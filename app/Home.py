"""acc-explorer: the router (st.navigation) and the landing page.

`streamlit run app/Home.py`. The landing page says what affinity cycle consistency does
(the ACC paper, section 3 and Figure 2), shows two sets drawn by the real set sampler, lists the
runs to explore (pretrained and the user's own) and where to start.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import common

st.set_page_config(page_title="ACC explorer", page_icon=":material/autorenew:", layout="wide")


@st.cache_data(show_spinner=False)
def example_sets(source: str = "shapes3d-procedural", inactive=("wall_hue", "floor_hue"),
                 set_size: int = 6, seed: int = 3):
    """Two sets (A, B) of image indices with `inactive` held fixed within each set."""
    from acc_core.sets import SetSampler

    ds = common.dataset(source)
    rng = np.random.default_rng(seed)
    a = SetSampler(ds, tuple(inactive), set_size).sample(rng, 1)[0]
    b = SetSampler(ds, tuple(inactive), set_size).sample(rng, 1)[0]
    return a.tolist(), b.tolist()


def home() -> None:
    st.title("ACC explorer")
    st.markdown(
        "**Affinity cycle consistency (ACC)** learns an embedding from *sets* of images. "
        "Within a set some factors of variation are held fixed (**inactive**) and the others "
        "vary (**active**); the network is trained so that every image of set A can find its "
        "soft nearest neighbour in set B and come back to itself. "
        "Because the fixed factors cannot help to match images across sets, the embedding "
        "drops them and keeps (some of) the active ones: with no labels, only set membership."
    )
    source = "shapes3d-procedural"
    ds = common.dataset(source)
    a, b = example_sets(source)
    fa, fb = ds.factors(a), ds.factors(b)
    wall, floor = ds.factor_index("wall_hue"), ds.factor_index("floor_hue")
    col_a, col_b = st.columns(2)
    with col_a:
        st.markdown(f"**Set A**: wall hue {common.value_label(ds, wall, fa[0, wall])}, "
                    f"floor hue {common.value_label(ds, floor, fa[0, floor])} for every image "
                    "(inactive); object hue, scale, shape and orientation vary (active).")
        common.show_images(source, None, a, size=72, width=72)
    with col_b:
        st.markdown(f"**Set B**: a different wall hue "
                    f"({common.value_label(ds, wall, fb[0, wall])}) and floor hue "
                    f"({common.value_label(ds, floor, fb[0, floor])}), the same factors active. "
                    "Set B may also be *unconstrained*: a random sample of everything.")
        common.show_images(source, None, b, size=72, width=72)
    st.caption("Images from the procedural Shapes3D renderer (six generative factors, "
               "480,000 combinations, no download). Sets are drawn by acc_core.sets, exactly "
               "as in training (the ACC paper, Figure 2).")

    st.subheader("Runs")
    runs = common.list_runs()
    if runs:
        df = common.runs_table(runs)
        st.dataframe(df, hide_index=True, width="stretch", column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                        format="percent"),
        })
        live = sum(r.status in ("queued", "running") for r in runs)
        st.caption(f"{len(runs)} runs ({live} queued or running). Runs live in "
                   f"`{common.root()}` and train in a background worker, so they survive a "
                   "browser refresh and every tab sees the same list.")
    else:
        st.info("No runs yet. Start on the **Train** page: the quick preset trains on this "
                "machine's CPU in a few minutes.")

    st.subheader("Where to start")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.page_link("views/train.py", label="Train a run", icon=":material/model_training:")
        st.caption("Choose which factors are inactive in sets A and B, launch, and watch the "
                   "embedding form.")
    with c2:
        st.page_link("views/embeddings.py", label="Look at embeddings",
                     icon=":material/scatter_plot:")
        st.caption("PCA/UMAP of a run coloured by each factor, beside the untrained network.")
    with c3:
        st.page_link("views/information.py", label="Measure information",
                     icon=":material/bar_chart:")
        st.caption("How much each factor survives in the embedding, against a noise scale.")


def landing() -> None:
    common.run_page(home)


pages = [
    st.Page(landing, title="Home", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("views/information.py", title="Information", icon=":material/bar_chart:"),
    st.Page("views/retrieval.py", title="Retrieval", icon=":material/image_search:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/random_loss.py", title="Loss of random points", icon=":material/casino:"),
]
st.navigation(pages).run()

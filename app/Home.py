"""acc-explorer: the router (st.navigation) and the landing page.

`streamlit run app/Home.py`. The landing page says what affinity cycle consistency does
(the ACC paper, section 3 and Figure 2), shows two sets drawn by the real set sampler, lists the
runs to explore (pretrained and the user's own) and where to start.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import streamlit as st

import common
import seeds_view

st.set_page_config(page_title="ACC explorer", page_icon=":material/autorenew:", layout="wide")


ASSETS = Path(__file__).resolve().parent / "assets"


@st.cache_data(show_spinner=False)
def example_sets() -> dict:
    """Two sets with wall and floor hue inactive, drawn by the real set sampler.

    Read from `assets/home_sets.npz` (written by `assets/make_home_sets.py`, checked by the
    tests), so the landing page opens without loading the renderer; drawn afresh if missing.
    """
    path = ASSETS / "home_sets.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    sys.path.insert(0, str(ASSETS))
    from make_home_sets import draw

    return draw()


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
    sets = example_sets()
    names = [str(n) for n in sets["factor_names"]]
    wall, floor = names.index("wall_hue"), names.index("floor_hue")
    (la, lb) = sets["first_labels"]
    col_a, col_b = st.columns(2)
    with col_a:
        st.markdown(f"**Set A**: wall hue {la[wall]}, floor hue {la[floor]} for every image "
                    "(inactive); object hue, scale, shape and orientation vary (active).")
        st.image(list(sets["images"][0]), width=72)
    with col_b:
        st.markdown(f"**Set B**: a different wall hue ({lb[wall]}) and floor hue "
                    f"({lb[floor]}), the same factors active. "
                    "Set B may also be *unconstrained*: a random sample of everything.")
        st.image(list(sets["images"][1]), width=72)
    st.caption("Images from the procedural Shapes3D renderer (six generative factors, "
               "480,000 combinations, no download). Sets are drawn by acc_core.sets, exactly "
               "as in training (the ACC paper, Figure 2).")

    st.subheader("Runs")
    runs = common.list_runs()
    seed_copies = [r for r in runs if common.is_seed_copy(r)]
    if runs:
        df = common.runs_table([r for r in runs if not common.is_seed_copy(r)])
        st.dataframe(df, hide_index=True, width="stretch", column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                        format="percent"),
        })
        if seed_copies:
            st.caption(f"Also shipped: {len(seed_copies)} more seeds of the pretrained Shapes3D "
                       "scenarios (named '…-seed1' to '…-seed4'); the Information page shows "
                       "their spread.")
        live = sum(r.status in ("queued", "running") for r in runs)
        st.caption(f"{len(runs)} runs ({live} queued or running). Runs live in "
                   f"`{common.root()}` and train in a background worker, so they survive a "
                   "browser refresh and every tab sees the same list.")
    else:
        st.info("No runs yet. Start on the **Train** page: its form starts on settings not "
                "trained yet, and the quick preset trains on this machine's CPU in a few "
                f"minutes. Runs will live in `{common.root()}` (set ACC_HOME to use another "
                "folder).")
    seeds_view.sweeps_section()

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
    st.Page("views/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    st.Page("views/random_loss.py", title="Loss of random points", icon=":material/casino:"),
    st.Page("views/pose.py", title="Pose", icon=":material/3d_rotation:"),
]
st.navigation(pages).run()

"""Train: choose the weak set supervision, launch runs, and watch them train.

For every factor, set A and set B each say whether it is active (varies within the set) or
inactive (held at one random value per set); set B may be unconstrained (the ACC paper,
section 3 and Figure 2). Presets are the papers' hyperparameters (the ABC supplement, S8)
or a quick CPU version.
Launching only queues the run in the store and makes sure a worker process is alive: the
app never trains in its own process, so a refresh or a second tab loses nothing.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

import common
import watcher
from acc_core import data as data_sources
from acc_core import methods
from acc_core.config import (AUGMENTATIONS, PRESETS, SIMILARITIES, DataConfig,
                             RunConfig, SetSpec, preset, validate)

SIMILARITY_HELP = {"l2sq": "negative squared distance", "l2": "negative distance",
                   "cosine": "cosine similarity"}
FIELDS = ("t_preset", "t_method", "t_similarity", "t_temperature", "t_set_size", "t_dim",
          "t_steps", "t_lr", "t_seeds", "t_image_size", "t_pairs", "t_snapshot_every",
          "t_probe_size", "t_augmentations", "t_double_aug", "t_b_unconstrained")
ss = st.session_state


# ----- form state: presets fill the widgets -------------------------------------------------
def factor_names(source: str) -> list[str]:
    return [f["name"] for f in data_sources.manifest(source)["factors"]]


def fill(cfg: RunConfig) -> None:
    """Write a config into the widgets' session state (used by presets and the dataset)."""
    t = cfg.train
    ss.update(t_method=t.method, t_similarity=t.similarity, t_temperature=float(t.temperature),
              t_set_size=int(t.set_size), t_dim=int(cfg.model.embedding_dim),
              t_steps=int(t.steps), t_lr=float(t.lr), t_seeds=str(t.seed),
              t_image_size=cfg.data.image_size or 0, t_pairs=int(t.pairs_per_step),
              t_snapshot_every=int(t.snapshot_every), t_probe_size=int(t.probe_size),
              t_augmentations=list(t.augmentations), t_double_aug=bool(t.double_augmentation),
              t_b_unconstrained=not cfg.set_b.inactive)
    for name in factor_names(cfg.data.source):
        ss[f"t_a_{name}"] = "inactive" if name in cfg.set_a.inactive else "active"
        ss[f"t_b_{name}"] = "inactive" if name in cfg.set_b.inactive else "active"
    ss["t_base"] = cfg.canonical_json()  # what the form does not show (encoder, held-out)


def apply_preset() -> None:
    cfg = preset(ss["t_preset"], ss["t_source"], method=ss.get("t_method", "acc"))
    fill(cfg)
    ss["t_seeds"] = str(first_untrained_seed(cfg))


def first_untrained_seed(cfg: RunConfig, tries: int = 50) -> int:
    """The preset's settings are often already trained (a shipped run): the form starts on
    the first seed that would train something new, so Launch never just opens a cache hit."""
    store = common.store()
    for seed in range(cfg.train.seed, cfg.train.seed + tries):
        rec = store.get(cfg.replace(train=dataclasses.replace(cfg.train, seed=seed)).run_id)
        if rec is None or rec.status != "done":
            return seed
    return cfg.train.seed


def form_keys(source: str) -> list[str]:
    names = factor_names(source)
    return ["t_source", "t_base", *FIELDS] + [f"t_{s}_{n}" for s in "ab" for n in names]


def restore_or_init() -> None:
    """Widget state is dropped while another page runs: keep a copy and restore it."""
    for k, v in ss.get("t_saved", {}).items():
        ss.setdefault(k, v)
    ss.setdefault("t_source", "shapes3d-procedural")
    ss.setdefault("t_preset", "quick")
    ss.setdefault("t_method", "acc")
    if any(k not in ss for k in form_keys(ss["t_source"])):
        apply_preset()


def save_form() -> None:
    ss["t_saved"] = {k: ss[k] for k in form_keys(ss["t_source"]) if k in ss}


def parse_seeds(text: str) -> list[int]:
    """'0' or '0, 1, 2' or '0-4' -> list of seeds (`acc sweep`'s parser, at most 16 a launch)."""
    from acc_core.sweep import parse_seeds as parse

    if not str(text).replace(",", "").strip():
        raise ValueError("give at least one seed, e.g. 0 (several seeds launch several runs)")
    try:
        seeds = list(parse(text))
    except ValueError:
        raise ValueError(f"seeds must be integers like '0', '0, 1, 2' or '0-4', got {text!r}") from None
    if len(seeds) > 16:
        raise ValueError(f"{len(seeds)} seeds is a lot for one launch; use at most 16")
    return seeds


def configs_from_form(source: str, names: list[str]) -> list[RunConfig]:
    base = RunConfig.from_json(ss["t_base"])
    inactive_a = tuple(n for n in names if ss[f"t_a_{n}"] == "inactive")
    inactive_b = () if ss["t_b_unconstrained"] else tuple(
        n for n in names if ss[f"t_b_{n}"] == "inactive")
    data = DataConfig(source=source, image_size=int(ss["t_image_size"]) or None,
                      held_out=base.data.held_out if base.data.source == source else {})
    # the preset's model with the form's code size (its output gain stays)
    model = dataclasses.replace(base.model, embedding_dim=int(ss["t_dim"]))
    if base.train.method != ss["t_method"]:  # the form's base belongs to another method
        base = preset(ss["t_preset"], source, method=ss["t_method"])
    train = dataclasses.replace(
        base.train, method=ss["t_method"], similarity=ss["t_similarity"],
        temperature=float(ss["t_temperature"]), set_size=int(ss["t_set_size"]),
        steps=int(ss["t_steps"]), lr=float(ss["t_lr"]), pairs_per_step=int(ss["t_pairs"]),
        snapshot_every=int(ss["t_snapshot_every"]), probe_size=int(ss["t_probe_size"]),
        checkpoint_every=min(base.train.checkpoint_every, int(ss["t_steps"])),
        augmentations=tuple(ss["t_augmentations"]), double_augmentation=bool(ss["t_double_aug"]))
    if base.params is not None:  # the code size is the method's own parameter: its preset's
        model = base.model
    params = base.params
    cfg = RunConfig(data=data, set_a=SetSpec(inactive_a), set_b=SetSpec(inactive_b),
                    model=model, train=train, params=params)
    return [cfg.replace(train=dataclasses.replace(cfg.train, seed=s))
            for s in parse_seeds(ss["t_seeds"])]


def problems(cfg: RunConfig, ds) -> list[str]:
    """Every reason the config cannot train, as sentences (empty when it can)."""
    out = []
    for check in (lambda: validate(cfg), lambda: cfg.method.check(cfg, ds)):
        try:
            check()
        except ValueError as e:
            msg = str(e)
            if msg not in out:
                out.append(msg)
    return out


# ----- the form -------------------------------------------------------------------------------
def factor_table(ds, names: list[str]) -> None:
    st.markdown("**Weak supervision**: which factors are held fixed within each set?")
    st.toggle("Set B unconstrained (a random sample of everything, no factor held fixed)",
              key="t_b_unconstrained",
              help="The ACC paper shows that factors are still isolated when only set A "
                   "is grouped.")
    head = st.columns([3, 1, 3, 3])
    head[0].caption("factor")
    head[1].caption("values")
    head[2].caption("set A")
    head[3].caption("set B")
    for k, name in enumerate(names):
        row = st.columns([3, 1, 3, 3], vertical_alignment="center")
        row[0].markdown(f"`{name}`")
        row[1].markdown(str(ds.factor_sizes[k]))
        row[2].segmented_control(f"set A: {name}", ["active", "inactive"], required=True,
                                 key=f"t_a_{name}", label_visibility="collapsed")
        row[3].segmented_control(f"set B: {name}", ["active", "inactive"], required=True,
                                 key=f"t_b_{name}", label_visibility="collapsed",
                                 disabled=bool(ss["t_b_unconstrained"]))
    st.caption("Inactive = held at one random value for the whole set, active = varies. "
               "ACC can only use factors that vary in both sets to match them, so the "
               "embedding should keep (some of) the active factors and drop the inactive ones.")
    held = RunConfig.from_json(ss["t_base"]).data.held_out
    for name, values in held.items():
        k = ds.factor_index(name)
        shown = ", ".join(str(ds.value_labels[k][v]) for v in values)
        st.caption(f"Held out by the preset: {name} {shown} never appears in training, so "
                   "retrieval can be tested on a class the network has not seen.")


def hyperparameters() -> None:
    method = methods.get(ss["t_method"])
    c = st.columns(4)
    c[0].selectbox("Similarity", list(SIMILARITIES), key="t_similarity",
                   format_func=lambda s: f"{s} ({SIMILARITY_HELP[s]})",
                   disabled=not method.uses_similarity,
                   help=None if method.uses_similarity else f"{method.name} has no similarity")
    c[1].number_input("Temperature τ", min_value=1e-3, max_value=1e3, key="t_temperature",
                      format="%g", disabled=not method.uses_similarity,
                      help="√τ is the length scale below which the loss stops caring (for l2sq).")
    c[2].number_input("Set size" if method.supervision == "sets" else "Batch / set size",
                      min_value=2, max_value=512, step=1, key="t_set_size")
    c[3].number_input("Code dimension", min_value=1, max_value=512, step=1, key="t_dim",
                      disabled=method.params is not None,
                      help="The embedding's dimension. Methods with parameters of their own "
                           "(LORD, the VAEs) take their code sizes from their preset.")
    c = st.columns(3)
    c[0].number_input("Steps", min_value=1, max_value=200_000, step=50, key="t_steps")
    c[1].number_input("Learning rate", min_value=1e-7, max_value=1.0, key="t_lr", format="%.1e",
                      step=1e-5, help="Type a value (e.g. 3e-4); the arrows move it by 1e-5.")
    c[2].text_input("Seed(s)", key="t_seeds", help="Several seeds ('0, 1, 2' or '0-4') launch "
                                                   "several runs: the Information page then "
                                                   "shows the spread across seeds.")
    with st.expander("Advanced"):
        c = st.columns(4)
        c[0].selectbox("Image size", [0, 16, 28, 32, 48, 64], key="t_image_size",
                       format_func=lambda s: "native" if s == 0 else f"{s} px")
        c[1].number_input("Set pairs per step", min_value=1, max_value=16, key="t_pairs")
        c[2].number_input("Snapshot every (steps)", min_value=1, max_value=100_000,
                          key="t_snapshot_every",
                          help="Embeddings of a fixed probe subset are saved this often.")
        c[3].number_input("Probe subset size", min_value=100, max_value=20_000, step=100,
                          key="t_probe_size")
        c = st.columns(2)
        c[0].multiselect("Augmentations", list(AUGMENTATIONS), key="t_augmentations")
        c[1].checkbox("Double augmentation (the cycle returns to another view)",
                      key="t_double_aug")


def estimate_text(configs: list[RunConfig]) -> str:
    """The run-time estimate on this machine, and which of the runs already exist."""
    store = common.store()
    existing = [store.get(c.run_id) for c in configs]
    todo = [c for c, r in zip(configs, existing) if r is None or r.status != "done"]
    if not todo:
        return ("Already trained: the same settings are the same run, so Launch only opens "
                "it on the other pages.")
    per_run = common.fmt_seconds(common.estimate_seconds(todo[0].canonical_json()))
    text = f"Estimated run time on this machine: about **{per_run}**"
    if len(todo) > 1:
        text += f" per run, {len(todo)} runs one after another"
    if len(todo) < len(configs):
        text += f" ({len(configs) - len(todo)} of these settings are already trained)"
    return text + "."


def launch(configs: list[RunConfig]) -> None:
    from acc_core.worker import ensure_worker

    s = common.store()
    # What each run was before this launch: another tab (or the CLI) may have queued or be
    # training the same settings, which are the same run; this launch then attaches to it.
    before = [s.get(cfg.run_id) for cfg in configs]
    # retry: launching the settings of a failed or cancelled run again resumes it.
    recs = [s.submit(cfg, retry=True) for cfg in configs]
    ensure_worker(common.root())
    ss["t_watch"] = ss["t_watch_box"] = recs[0].run_id  # the watcher follows the launch
    ss["selected_run"] = recs[0].run_id  # and so do the analysis pages
    ss["t_flash"] = launch_message([None if b is None else b.status for b in before], recs)


def launch_message(before: list, recs: list) -> str:
    """What a launch did, per run: queued it, attached to the same run queued or training
    elsewhere, or found it trained. `before`: each run's status before the launch (or None)."""
    was = [b if r.status != "done" else "done" for b, r in zip(before, recs)]
    new = sum(w in (None, "failed", "cancelled", "interrupted") for w in was)
    running = sum(w == "running" for w in was)
    waiting = sum(w == "queued" for w in was)
    done = sum(w == "done" for w in was)
    parts = [f"Queued {new} run(s)."] if new else []
    if running:
        parts.append(f"Attached to {running} run(s) already training with the same settings "
                     "(launched from another tab or the command line): following its progress.")
    if waiting:
        parts.append(f"Attached to {waiting} run(s) already queued with the same settings "
                     "(launched from another tab or the command line): following it.")
    if done:
        parts.append(f"{done} already trained (same settings, same run): open it on "
                     "the Embeddings page.")
    return " ".join(parts)


# ----- the page --------------------------------------------------------------------------------
def page() -> None:
    st.title("Train")
    st.caption("Pick a dataset, say which factors are held fixed within set A and set B, and "
               "launch. Training runs in a background worker; you can leave this page.")
    restore_or_init()
    c = st.columns([2, 1])
    c[0].selectbox("Dataset", data_sources.available(), key="t_source", on_change=apply_preset,
                   help="shapes3d-procedural and digits need no download.")
    c[1].segmented_control("Preset", list(PRESETS)[::-1], key="t_preset", required=True,
                           on_change=apply_preset,
                           help="paper: the publication's hyperparameters; quick: smaller "
                                "images and fewer, larger steps for a CPU.")
    st.selectbox("Method", methods.names(), key="t_method", on_change=apply_preset,
                 format_func=lambda n: methods.get(n).title,
                 help="Every method reads the same scenario below and receives the "
                      "supervision it naturally takes.")
    source = ss["t_source"]
    try:
        ds = common.dataset(source)
    except data_sources.DataError as e:
        st.error(str(e))
        save_form()
        watcher.watch()
        return
    names = list(ds.factor_names)
    factor_table(ds, names)
    hyperparameters()
    save_form()

    try:
        configs = configs_from_form(source, names)
        issues = problems(configs[0], ds)
    except ValueError as e:
        configs, issues = [], [str(e)]
    if configs:
        st.info(f"Supervision ({configs[0].method.name}): "
                f"{configs[0].method.supervision_text(configs[0])}")
    for msg in issues:
        st.error(msg)
    if configs and not issues:
        st.info(estimate_text(configs))
    if st.button("Launch", type="primary", disabled=bool(issues) or not configs, key="t_launch"):
        launch(configs)
    if ss.get("t_flash"):
        st.success(ss.pop("t_flash"))
    watcher.watch()


common.run_page(page)

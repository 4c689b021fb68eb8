"""Shipped runs: the papers' scenarios, trained once, explorable with no computation.

Each scenario of the ACC paper's Figure 3c (procedural Shapes3D) and section 4.2 (digit
style) is a config here. `export` copies a finished run into `pretrained/<name>/`:
config, training log, embedding snapshots (float16), the cached evaluation, and weights
(float16, loaded weights-only). `reproduce` retrains a scenario from its shipped config in a
scratch store and sets the new evaluation beside the shipped one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from acc_core import rundir
from acc_core.data.base import DataError
from acc_core.config import RunConfig, SetSpec, preset
from acc_core.paths import atomic_write_json, pretrained_dir

HUES = ("floor_hue", "wall_hue", "object_hue")


def _shapes(inactive_a, inactive_b, recipe="quick", **train) -> RunConfig:
    """An ACC recipe (`acc_core.methods.acc.RECIPES`) on procedural Shapes3D with these sets."""
    from acc_core.methods.acc import RECIPES

    cfg = RECIPES[recipe]("shapes3d-procedural")
    return cfg.replace(
        set_a=SetSpec(inactive=tuple(inactive_a)),
        set_b=SetSpec(inactive=tuple(inactive_b)),
        train=dataclasses.replace(cfg.train, **train),
    )


SEEDS = 5  # the reproduction report's seed statistics: seeds 0..4 of every Shapes3D scenario
TEMPERATURES = (0.25, 4.0)  # with tau = 1 (the main run): the length scale sqrt(tau) moves


# The ACC recipe (`acc_core.methods.acc.RECIPES`) each ACC scenario of Figure 3c ships with,
# seeds 0..4 alike; docs/REPRODUCTION.md names it beside each row. The 2-D run, the two
# temperatures and the appendix C run use `quick` too; the InfoNCE baseline keeps `quick-300`.
FIG3C_RECIPE = {
    "shapes3d-no-inactive": "quick",
    "shapes3d-wall-hue": "quick",
    "shapes3d-wall-object-hue": "quick",
    "shapes3d-all-hues": "quick",
    "shapes3d-wall-hue-b-free": "quick",
}
# Main scenarios shipped without weights (their evaluation and snapshots only), to keep
# pretrained/ within 30 MB: a 48x48 network's weights take 2.7 MB. Each retrains in under a
# minute (`acc pretrained reproduce NAME`); the app's views that need weights say so.
LIGHT_MAIN = ("shapes3d-no-inactive", "shapes3d-wall-object-hue", "shapes3d-wall-hue-b-free",
              "shapes3d-wall-hue-2d")


def scenarios() -> dict[str, tuple[RunConfig, str]]:
    """The main scenarios, shipped whole (weights included): name -> (config, description)."""
    wall = ("wall_hue",)
    r = FIG3C_RECIPE
    s = {
        "shapes3d-no-inactive": (_shapes((), (), r["shapes3d-no-inactive"]),
                                 "no set supervision: every factor active"),
        "shapes3d-wall-hue": (_shapes(wall, wall, r["shapes3d-wall-hue"]), "wall hue inactive in A and B"),
        "shapes3d-wall-object-hue": (
            _shapes(("wall_hue", "object_hue"), ("wall_hue", "object_hue"), r["shapes3d-wall-object-hue"]),
            "wall and object hue inactive",
        ),
        "shapes3d-all-hues": (_shapes(HUES, HUES, r["shapes3d-all-hues"]), "all three hues inactive"),
        "shapes3d-wall-hue-b-free": (_shapes(wall, (), r["shapes3d-wall-hue-b-free"]),
                                     "wall hue inactive in A, B unconstrained"),
        "shapes3d-hue-infonce": (
            _shapes((), (), recipe="quick-300", method="hue_infonce", augmentations=("hue",),
                    similarity="cosine", temperature=0.1),
            "contrastive baseline: InfoNCE between two hue augmentations",
        ),
    }
    two_d = _shapes(wall, wall, "quick")
    s["shapes3d-wall-hue-2d"] = (
        two_d.replace(model=dataclasses.replace(two_d.model, embedding_dim=2)),
        "wall hue inactive, 2-D embedding (histogram mutual information)",
    )
    s["digits-style"] = (preset("paper", "digits"),
                         "digit style isolation: sets grouped by digit, 9 held out, 8-D")
    return s


def _with_train(cfg: RunConfig, **train) -> RunConfig:
    return cfg.replace(train=dataclasses.replace(cfg.train, **train))


def extra_scenarios() -> dict[str, tuple[RunConfig, str]]:
    """Runs behind the reproduction report, shipped light (evaluation, first and last
    snapshot, no weights): seeds 1..4 of the six Shapes3D scenarios of Figure 3c, two more
    temperatures, the appendix C split, and scenarios 2 and 4 with the `paper` preset."""
    main = scenarios()
    out: dict[str, tuple[RunConfig, str]] = {}
    for name in ("shapes3d-no-inactive", "shapes3d-wall-hue", "shapes3d-wall-object-hue",
                 "shapes3d-all-hues", "shapes3d-wall-hue-b-free", "shapes3d-hue-infonce"):
        cfg, desc = main[name]
        for seed in range(1, SEEDS):
            out[f"{name}-seed{seed}"] = (_with_train(cfg, seed=seed), f"{desc} (seed {seed})")
    wall_cfg = _shapes(("wall_hue",), ("wall_hue",), "quick")
    for tau in TEMPERATURES:
        out[f"shapes3d-wall-hue-tau{tau:g}"] = (
            _with_train(wall_cfg, temperature=tau), f"wall hue inactive, temperature tau = {tau:g}")
    four = _shapes(HUES + ("scale",), HUES + ("scale",), "quick")
    out["shapes3d-hues-scale"] = (
        four, "the three hues and scale inactive (appendix C: does shape split in two?)")
    for name in ("shapes3d-wall-hue", "shapes3d-all-hues"):
        paper = preset("paper", "shapes3d-procedural").replace(
            set_a=main[name][0].set_a, set_b=main[name][0].set_b)
        out[f"{name}-paper"] = (paper, main[name][1] + ", `paper` preset (64x64, 2,000 steps)")
    return out


def optional_scenarios() -> dict[str, tuple[RunConfig, str]]:
    """Built only when asked for by name (their data is not bundled)."""
    return {"mnist-style": (preset("paper", "mnist"),
                            "digit style isolation on MNIST: sets grouped by digit, 9 held out, 8-D")}


PEER_METHODS = ("lord", "beta_vae", "ml_vae", "ada_gvae", "mixing", "rci")
PEER_SCENARIOS = ("shapes3d-wall-hue", "shapes3d-all-hues", "digits-style")
# Unsupervised peers that ignore the scenario entirely ship once per dataset, not per scenario.
ONE_PER_DATASET = {"mixing": ("shapes3d-wall-hue", "digits-style"),
                   "beta_vae": ("shapes3d-wall-hue", "digits-style")}


def method_scenarios() -> dict[str, tuple[RunConfig, str]]:
    """The peer methods' quick presets on the main scenarios (the same data and the same
    inactive factors as the shipped ACC run of that name), shipped light: name
    '<scenario>-<method>'. Each method receives the supervision it takes from the scenario."""
    from acc_core import methods

    main = scenarios()
    out: dict[str, tuple[RunConfig, str]] = {}
    for scenario in PEER_SCENARIOS:
        acc_cfg, desc = main[scenario]
        for name in PEER_METHODS:
            if name not in methods.names() or scenario not in ONE_PER_DATASET.get(name, (scenario,)):
                continue
            out[f"{scenario}-{name.replace('_', '-')}"] = (
                on_scenario(acc_cfg, name),
                f"{methods.get(name).title}: {desc.replace(', 8-D', '')}, quick preset")
    return out


def on_scenario(scenario: RunConfig, method: str, preset_name: str = "quick") -> RunConfig:
    """`method`'s preset on a scenario's data and weak supervision (its sets and held-out
    values): what every method receives from one scenario (the shipped peer runs, `acc sweep`)."""
    cfg = preset(preset_name, scenario.data.source, method=method)
    return cfg.replace(set_a=scenario.set_a, set_b=scenario.set_b,
                       data=dataclasses.replace(cfg.data, held_out=scenario.data.held_out))


def all_scenarios() -> dict[str, tuple[RunConfig, str]]:
    return {**scenarios(), **extra_scenarios(), **method_scenarios(), **optional_scenarios()}


def list_pretrained(root: Path | None = None) -> list[dict]:
    """Shipped runs: their meta.json, run id and folder. A broken folder is listed with the
    reason instead of hiding the others."""
    from acc_core.data.base import DataError

    root = Path(root or pretrained_dir())
    out = []
    for meta in sorted(root.glob(f"*/{rundir.META}")):
        d = meta.parent
        try:
            m = rundir.read_meta(d)
            cfg = rundir.read_config(d)
            out.append({**m, "name": m.get("name", d.name), "run_id": cfg.run_id, "dir": str(d),
                        "method": cfg.train.method})
        except DataError as e:
            out.append({"name": d.name, "run_id": "?", "dir": str(d), "method": "?",
                        "description": f"unreadable: {e}", "error": str(e)})
    return out


def export(run_dir: Path, name: str, description: str, *, dest: Path | None = None,
           max_snapshots: int = 7, weights: bool = True) -> Path:
    """Copy a finished run into the shipped folder, compactly (`weights=False`: no checkpoint)."""
    run_dir = Path(run_dir)
    cfg = rundir.read_config(run_dir)
    out = Path(dest or pretrained_dir()) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{name}."))
    try:
        rundir.write_config(tmp, cfg)
        _export_log(run_dir, tmp)
        steps = rundir.snapshot_steps(run_dir)
        keep = sorted(set(np.linspace(0, len(steps) - 1, min(max_snapshots, len(steps)))
                          .round().astype(int).tolist()))
        reps = cfg.method.representations
        for i in keep:
            z = rundir.load_snapshot(run_dir, steps[i])
            codes = {r: rundir.snapshot_codes(z, r, reps) for r in reps}
            rundir.save_snapshot(tmp, steps[i], codes, z["indices"], z["factors"],
                                 compressed=True, half=True, split=z["split"])
        if weights:
            ckpt = rundir.load_checkpoint(rundir.checkpoint_path(run_dir))
            torch.save({"model": {k: v.half() for k, v in ckpt["model"].items()},
                        "step": ckpt["step"], "config": ckpt["config"], "run_id": cfg.run_id},
                       rundir.checkpoint_path(tmp))
        if rundir.read_model_eval(run_dir) is not None:
            shutil.copytree(rundir.eval_dir(run_dir), rundir.eval_dir(tmp),
                            ignore=lambda d, names: [n for n in names if n not in (
                                rundir.MODEL_EVAL, rundir.MODEL_IMAGES)])
        _evaluate_for_shipping(tmp)
        # meta.json last: it marks the folder as shipped (evaluate then caches elsewhere)
        rundir.write_meta(tmp, {
            "name": name, "description": description, "status": "done", "run_id": cfg.run_id,
            "step": cfg.train.steps, "exported": time.strftime("%Y-%m-%d"), "weights": weights,
        })
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


MAX_LOG_RECORDS = 200  # a shipped log keeps the loss curve's shape, not every step


def _export_log(run_dir: Path, dest: Path) -> None:
    """The training log, thinned to at most MAX_LOG_RECORDS evenly spaced records (the last
    one always kept), so long runs ship small."""
    import json

    records = rundir.read_log(run_dir)
    if len(records) > MAX_LOG_RECORDS:
        keep = set(np.linspace(0, len(records) - 1, MAX_LOG_RECORDS).round().astype(int))
        records = [r for i, r in enumerate(records) if i in keep]
    def short(k, v):  # 5 significant digits are plenty for a plotted curve; clock times keep 0.1 s
        if not isinstance(v, float):
            return v
        return round(v, 1) if k == "time" else float(f"{v:.5g}")

    (dest / rundir.LOG).write_text("".join(
        json.dumps({k: short(k, v) for k, v in r.items()}) + "\n" for r in records))


def _evaluate_for_shipping(run_dir: Path) -> None:
    """The cached evaluation a shipped run carries, so the app computes nothing heavy: for
    every representation of its method."""
    from acc_core import evaluate

    for rep in rundir.read_config(run_dir).method.representations:
        evaluate.report(run_dir, rep=rep)
        for which in ("initial", "final"):
            evaluate.projection(run_dir, which, "pca", 2, rep=rep)
        evaluate.noise_sweep(run_dir, "initial", rep=rep)
    # the page's UMAP view opens at once, at every shipped training step
    for step in rundir.snapshot_steps(run_dir):
        evaluate.projection(run_dir, step, "umap", 2)
    evaluate.every_alignment(run_dir)  # the leaderboard's scores
    evaluate.pack_eval(run_dir)  # dozens of small JSON files -> one


def _shipped_dir(name: str, root: Path | None = None) -> Path:
    """The folder of the shipped run `name`, or a ValueError listing the names."""
    shipped = {p["name"]: Path(p["dir"]) for p in list_pretrained(root)}
    if name not in shipped:
        raise ValueError(f"unknown pretrained run {name!r}; available: {', '.join(shipped) or 'none'}")
    return shipped[name]


def _unshipped_copy(d: Path, work: Path) -> Path:
    """A copy of a shipped run without its shipped flag and caches: analyses of the copy
    write into its own eval/, never into pretrained/."""
    copy = work / d.name
    shutil.copytree(d, copy, ignore=lambda _, names: [n for n in names if n in (
        rundir.META, rundir.EVAL)])
    return copy


def add_umap(name: str, root: Path | None = None) -> Path:
    """Ship the UMAP of every shipped snapshot of a shipped run's default code (computed in a
    copy of the folder without its shipped flag, then moved into its eval/)."""
    from acc_core import evaluate

    d = _shipped_dir(name, root)
    with tempfile.TemporaryDirectory(dir=d.parent) as work:
        copy = _unshipped_copy(d, Path(work))
        for step in rundir.snapshot_steps(copy):
            evaluate.projection(copy, step, "umap", 2)
        for f in sorted(rundir.eval_dir(copy).glob("umap2_step*.npz")):
            os.replace(f, rundir.eval_dir(d) / f.name)
    return d


def add_metrics(name: str, root: Path | None = None) -> Path:
    """Ship the leaderboard's disentanglement scores of a shipped run (computed in a copy of the
    folder without its shipped flag, then packed into its eval/cache.json)."""
    from acc_core import evaluate

    d = _shipped_dir(name, root)
    with tempfile.TemporaryDirectory(dir=d.parent) as work:
        copy = _unshipped_copy(d, Path(work))
        evaluate.every_alignment(copy)
        packed_path = rundir.eval_dir(d) / rundir.PACKED_EVAL
        packed = json.loads(packed_path.read_text()) if packed_path.exists() else {}
        packed = {k: v for k, v in packed.items() if not k.startswith("metrics_")}  # older recipes
        for f in sorted(rundir.eval_dir(copy).glob("metrics_step*.json")):
            packed[f.name] = json.loads(f.read_text())
        atomic_write_json(packed_path, packed, indent=None)
    evaluate._packed.cache_clear()
    return d


def refresh_evaluation(name: str, root: Path | None = None) -> Path:
    """Recompute a shipped run's cached evaluation (after the analysis changed): in a copy of
    the folder without its shipped flag, whose new eval/ then replaces the shipped one."""
    d = _shipped_dir(name, root)
    with tempfile.TemporaryDirectory(dir=d.parent) as work:
        copy = _unshipped_copy(d, Path(work))
        if rundir.read_model_eval(d) is not None:
            (copy / rundir.EVAL).mkdir()
            for n in (rundir.MODEL_EVAL, rundir.MODEL_IMAGES):
                shutil.copy(rundir.eval_dir(d) / n, rundir.eval_dir(copy) / n)
        _evaluate_for_shipping(copy)
        old = Path(work) / "old-eval"
        if rundir.eval_dir(d).exists():
            os.replace(rundir.eval_dir(d), old)
        os.replace(rundir.eval_dir(copy), rundir.eval_dir(d))
    return d


def reproduce(name: str, *, device: str | None = None, root: Path | None = None,
              progress=None) -> dict:
    """Retrain a shipped run from its config and compare the new evaluation with it.
    `progress`: called with the training loop's progress records (the CLI draws a bar)."""
    from acc_core import evaluate
    from acc_core.train import train

    src = _shipped_dir(name, root)
    cfg = rundir.read_config(src)
    old = evaluate.report(src)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = train(cfg, Path(d) / cfg.run_id, device=device, progress=progress)
        seconds = time.perf_counter() - t0
        if result["status"] != "done":
            raise DataError(f"retraining {name} ended {result['status']}: {result['reason']}")
        new = evaluate.report(Path(d) / cfg.run_id)
    rows = {}
    for f in old["factors"]:
        rows[f] = {
            "shipped_mi": round(old["factors"][f]["final_mi"], 3),
            "new_mi": round(new["factors"][f]["final_mi"], 3),
            "shipped_probe": round(old["factors"][f]["final_probe"], 3),
            "new_probe": round(new["factors"][f]["final_probe"], 3),
        }
    # Verdict: on the CPU training is deterministic, so the retrained run should match; MI
    # within 0.05 nats and probes within 0.05 count as reproduced (other hardware, other
    # torch builds differ in the last bits).
    worst_mi = max(abs(r["shipped_mi"] - r["new_mi"]) for r in rows.values())
    worst_probe = max(abs(r["shipped_probe"] - r["new_probe"]) for r in rows.values())
    return {"name": name, "run_id": cfg.run_id, "train_seconds": round(seconds, 1),
            "sigma": old["sigma"], "factors": rows, "max_mi_difference": round(worst_mi, 3),
            "max_probe_difference": round(worst_probe, 3),
            "reproduced": bool(worst_mi <= 0.05 and worst_probe <= 0.05)}


def format_reproduction(out: dict) -> str:
    lines = [f"{out['name']} ({out['run_id']}): retrained in {out['train_seconds']:.0f} s; "
             f"MI and probes at sigma = {out['sigma']:.3g}", "",
             f"{'factor':<14}{'MI shipped':>11}{'MI new':>9}{'probe shipped':>15}{'probe new':>11}"]
    for f, r in out["factors"].items():
        lines.append(f"{f:<14}{max(r['shipped_mi'], 0):>11.3f}{max(r['new_mi'], 0):>9.3f}"
                     f"{r['shipped_probe']:>15.3f}{r['new_probe']:>11.3f}")
    verdict = "REPRODUCED" if out["reproduced"] else "NOT REPRODUCED"
    lines += ["", f"{verdict}: largest difference {out['max_mi_difference']:.3f} nats of MI, "
                  f"{out['max_probe_difference']:.3f} in probe accuracy (threshold 0.05 each)"]
    return "\n".join(lines)


def build(names: list[str] | None = None, *, device: str | None = None,
          dest: Path | None = None, force: bool = False) -> list[Path]:
    """Train scenarios in the run store (cached by config) and export them.

    Without names: the main and extra scenarios. A scenario already shipped with the same
    config is skipped unless `force`. Extra scenarios export light (no weights, two snapshots).
    """
    from acc_core.cli import check_config
    from acc_core.runner import train_claimed
    from acc_core.store import RunStore

    table, extra = all_scenarios(), {**extra_scenarios(), **method_scenarios()}
    unknown = [n for n in names or [] if n not in table]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r}; valid: {', '.join(table)}")
    shipped = {p["name"]: p["run_id"] for p in list_pretrained(dest)} if not force else {}
    store = RunStore()
    store.reap_dead()  # a build killed earlier left its run 'running': it resumes below
    out = []
    for name in names or [*scenarios(), *extra]:
        cfg, description = table[name]
        if shipped.get(name) == cfg.run_id:
            print(f"{name}: already shipped ({cfg.run_id}), skipped", flush=True)
            continue
        check_config(cfg)  # a missing dataset fails here, before anything is queued
        rec = store.submit(cfg, label=name, retry=True)
        if rec.status != "done":
            owner = f"build-{name}-{os.getpid()}"
            claimed = store.claim(rec.run_id, owner, os.getpid())
            if not claimed:
                raise DataError(f"run {rec.run_id} for {name} is being trained by another process; "
                                "wait for it (`acc runs`) and build again")
            t0 = time.perf_counter()
            res = train_claimed(store, claimed, owner, device=device)
            if res["status"] != "done":
                raise DataError(f"{name} ended {res['status']}: {res['reason']}")
            print(f"{name}: trained in {time.perf_counter() - t0:.0f} s", flush=True)
        light = name in extra or name in LIGHT_MAIN
        out.append(export(rec.dir, name, description, dest=dest, weights=not light,
                          max_snapshots=2 if name in extra else 7))
        print(f"exported {name} -> {out[-1]}", flush=True)
    return out

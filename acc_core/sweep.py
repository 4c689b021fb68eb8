"""Sweeps: a grid of methods x scenarios x seeds x config fields, trained as many runs.

The ACC paper's Figure 3c (section 4.1) repeats each of six Shapes3D scenarios for 50 random
seeds; comparing methods on the same scenarios needs as many runs again. `expand` turns a grid
into run configs through the path `acc train` takes (`cli.config_from_args`: a preset, or a
named scenario of `acc_core.pretrained`, then the seed), and then sets any config field given
as `section.field=value` (several values: one more axis of the grid). `acc_core.sweep_run.run_sweep`
submits them to the store: the same config is the same run, so what is done is skipped and a
rerun of a sweep resumes it; the rest trains through `runner.train_claimed`, one at a time in
this process or as Ray tasks (`acc_core.sweep_ray`) on an embedded Ray or a cluster.

Membership is recorded in <store>/sweeps/<name>.json (the run ids), so the app can show a
sweep's progress; the store's index stays the one record of each run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

from acc_core.config import PRESETS, RunConfig, validate
from acc_core.paths import atomic_write_json

SWEEPS = "sweeps"  # <store>/sweeps/<name>.json
NOT_SETTABLE = {"train.method": "--method", "train.seed": "--seeds"}


@dataclass(frozen=True)
class Grid:
    methods: tuple = (None,)  # None: each scenario's own method (ACC without a scenario)
    scenarios: tuple = (None,)  # names of acc_core.pretrained scenarios; None: the preset's
    seeds: tuple[int, ...] = (0,)
    preset: str | None = None  # None: a scenario's own config for its method, else "quick"
    data: str | None = None  # the source when no scenario names one
    fields: tuple = ()  # ((section.field, (value, ...)), ...): one grid axis per field


# ----- parsing ---------------------------------------------------------------------------------
def parse_seeds(spec) -> tuple[int, ...]:
    """'0-49', '0,3,7', 5, or a list of those -> seeds, in order, without repeats."""
    parts = spec if isinstance(spec, (list, tuple)) else [spec]
    seeds: list[int] = []
    for part in parts:
        for item in str(part).replace(" ", "").split(","):
            if not item:
                continue
            try:
                if "-" in item:
                    lo, hi = item.split("-", 1)
                    seeds += range(int(lo), int(hi) + 1)
                else:
                    seeds.append(int(item))
            except ValueError:
                raise ValueError(f"seeds are integers like 0, 0,1,2 or 0-49; got {part!r}") from None
    if not seeds:
        raise ValueError("give at least one seed, e.g. --seeds 0-4")
    return tuple(dict.fromkeys(seeds))


def parse_set(item: str) -> tuple[str, tuple]:
    """'train.steps=300' -> ('train.steps', ('300',)); 'train.temperature=0.25,1,4' is an axis
    of three; a JSON list ('[...]') is an axis of its items; a tuple field's items are joined
    by '+' ('set_a.inactive=wall_hue+object_hue', '' for none)."""
    if "=" not in item:
        raise ValueError(f"--set expects SECTION.FIELD=VALUE (e.g. train.steps=300), got {item!r}")
    name, text = (s.strip() for s in item.split("=", 1))
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError as e:
            raise ValueError(f"--set {name}: {text!r} is not a JSON list ({e})") from None
        return name, tuple(values)
    if text.startswith("{"):
        return name, (text,)
    return name, tuple(text.split(","))


def load_spec(path) -> dict:
    """A sweep spec file, JSON or TOML: keys name, methods, scenarios, seeds, preset, data, set
    (a table of field -> value, or a list of values for an axis)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read the sweep spec {path} ({e.strerror or e})") from None
    try:
        if path.suffix == ".toml":
            import tomllib  # Python 3.11+

            spec = tomllib.loads(text)
        else:
            spec = json.loads(text)
    except ModuleNotFoundError:
        raise ValueError("TOML sweep specs need Python 3.11 or newer; write it as JSON") from None
    except ValueError as e:
        raise ValueError(f"the sweep spec {path} does not parse ({e})") from None
    keys = ("name", "methods", "scenarios", "seeds", "preset", "data", "set")
    bad = [k for k in spec if k not in keys] if isinstance(spec, dict) else ["(not a table)"]
    if bad:
        raise ValueError(f"unknown key {bad[0]!r} in the sweep spec {path}; valid: {', '.join(keys)}")
    return spec


def grid_from(spec: dict) -> Grid:
    """A Grid from a spec's plain values (a spec file's, or the command line's)."""
    def names(v):
        return (None,) if not v else tuple([v] if isinstance(v, str) else v)

    # A list is an axis (a tuple field's items are lists, or strings joined by '+').
    fields = tuple((name, tuple(v) if isinstance(v, list) else (v,))
                   for name, v in (spec.get("set") or {}).items())
    return Grid(methods=names(spec.get("methods")), scenarios=names(spec.get("scenarios")),
                seeds=parse_seeds(spec.get("seeds", 0)), preset=spec.get("preset"),
                data=spec.get("data"), fields=fields)


# ----- expansion ---------------------------------------------------------------------------------
@functools.cache
def _train_defaults() -> dict:
    from acc_core.cli import build_parser

    return vars(build_parser().parse_args(["train"]))


def _train_args(**given):
    import argparse

    return argparse.Namespace(**{**_train_defaults(), **given})


def base_config(method, scenario, grid: Grid, scenarios: dict) -> tuple[RunConfig, str]:
    """(config before seed and fields, its method) for one method on one scenario."""
    from acc_core.pretrained import on_scenario

    if scenario is None:
        return None, method or "acc"
    cfg = scenarios[scenario][0]
    own = method in (None, cfg.train.method)
    if own and grid.preset is None:
        return cfg, cfg.train.method
    method = method or cfg.train.method
    return on_scenario(cfg, method, grid.preset or "quick"), method


def expand(grid: Grid) -> list[RunConfig]:
    """Every run of the grid, seeds outermost (seed 0 of every configuration comes first, so a
    sweep stopped early still covers all of them); duplicates collapse to one run."""
    from acc_core import methods, pretrained
    from acc_core.cli import config_from_args

    for m in grid.methods:
        if m is not None:
            methods.get(m)  # unknown: a ValueError listing the valid names
    if grid.preset is not None and grid.preset not in PRESETS:
        raise ValueError(f"unknown preset {grid.preset!r}; valid: {', '.join(PRESETS)}")
    scenarios = pretrained.all_scenarios()
    for s in grid.scenarios:
        if s is not None and s not in scenarios:
            raise ValueError(f"unknown scenario {s!r}; valid: {', '.join(scenarios)}")
    if grid.data and any(s is not None for s in grid.scenarios):
        raise ValueError("a scenario names its own data: give --data or --scenario, not both")
    names = [f for f, _ in grid.fields]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"config field {twice!r} is set twice; give its values once, comma-separated")
    out: dict[str, RunConfig] = {}
    for seed, scenario, method in itertools.product(grid.seeds, grid.scenarios, grid.methods):
        base, m = base_config(method, scenario, grid, scenarios)
        cfg = config_from_args(_train_args(preset=grid.preset or "quick", method=m, seed=seed,
                                           data=grid.data or "shapes3d-procedural"), base=base)
        for combo in itertools.product(*(vals for _, vals in grid.fields)):
            run = set_fields(cfg, dict(zip(names, combo)))
            validate(run)
            out.setdefault(run.run_id, run)
    return list(out.values())


def _all_fields(cfg: RunConfig) -> dict:
    """Every config field by section, also those `to_dict` leaves out at their defaults
    (train.precision, model.output_gain, ...): each of them can be swept too."""
    import dataclasses

    from acc_core.config import _plain

    d = _plain(dataclasses.asdict(cfg))
    if cfg.params is None:
        d.pop("params")
    return d


def valid_fields(cfg: RunConfig) -> list[str]:
    d = _all_fields(cfg)
    return [f"{s}.{k}" for s in d for k in d[s] if f"{s}.{k}" not in NOT_SETTABLE]


def set_fields(cfg: RunConfig, values: dict) -> RunConfig:
    """`cfg` with config fields ('section.field') set; values are typed by the field."""
    if not values:
        return cfg
    d = _all_fields(cfg)
    for name, value in values.items():
        if name in NOT_SETTABLE:
            raise ValueError(f"{name} is an axis of its own: use {NOT_SETTABLE[name]}")
        section, _, key = name.partition(".")
        if section not in d or key not in d[section]:
            extra = (f" for method {cfg.train.method} (a method's params apply to it alone: "
                     "sweep other methods separately)") if section == "params" else ""
            raise ValueError(f"unknown config field {name!r}{extra}; valid: "
                             f"{', '.join(valid_fields(cfg))}")
        d[section][key] = _coerce(value, d[section][key], name)
    return RunConfig.from_dict(d)


def _coerce(value, current, name: str):
    if isinstance(current, list):  # a tuple field
        if isinstance(value, (list, tuple)):
            return list(value)
        text = str(value).strip()
        return [] if text.lower() in ("", "none") else text.split("+")
    if isinstance(current, dict):  # held_out: a JSON object
        if isinstance(value, dict):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{name} takes a JSON object like '{{\"digit\": [9]}}', got {value!r}") from None
    text = str(value).strip()
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if current is None:
            if text.lower() in ("none", "null", ""):
                return None
            return int(text) if text.lstrip("-").isdigit() else text
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(
            type(current), "an integer or none")
        raise ValueError(f"{name} takes {kind} (like {current!r}), got {value!r}") from None
    return text


# ----- membership ----------------------------------------------------------------------------------
def default_name(run_ids: list[str]) -> str:
    """The same runs make the same sweep: a rerun updates its record instead of adding one."""
    return "sweep-" + hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:8]


def record_sweep(root, name: str, run_ids: list[str], spec: dict | None = None) -> Path:
    path = Path(root) / SWEEPS / f"{name}.json"
    created = time.time()
    with contextlib.suppress(OSError, ValueError, KeyError):
        created = json.loads(path.read_text())["created_at"]
    atomic_write_json(path, {"name": name, "created_at": created, "updated_at": time.time(),
                             "runs": list(run_ids), "spec": spec or {}})
    return path


def list_sweeps(root) -> list[dict]:
    """The store's sweeps, most recently started first (unreadable records are skipped)."""
    out = []
    for p in (Path(root) / SWEEPS).glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            rec = json.loads(p.read_text())
            if isinstance(rec, dict) and isinstance(rec.get("runs"), list):
                out.append(rec)
    return sorted(out, key=lambda r: -float(r.get("updated_at", 0)))


def counts(store, run_ids: list[str]) -> dict:
    """{total, done, running, failed, waiting} of these runs, from the store's index."""
    status = {r.run_id: r for r in store.list_runs()}
    c = {"total": len(run_ids), "done": 0, "running": 0, "failed": 0, "waiting": 0, "fraction": 0.0}
    for rid in run_ids:
        r = status.get(rid)
        s = r.status if r is not None else "queued"
        key = {"done": "done", "running": "running", "failed": "failed",
               "cancelled": "failed"}.get(s, "waiting")
        c[key] += 1
        if s == "running" and r.steps:
            c["fraction"] += min(r.step / r.steps, 1.0)
    return c

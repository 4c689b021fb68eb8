"""`acc sweep`: train a grid of runs (methods x scenarios x seeds x config fields).

    acc sweep --scenario shapes3d-wall-hue shapes3d-all-hues --seeds 0-4 --set train.steps=300
    acc sweep fig3c.toml --address ray://head:10001      # a spec file, on a Ray cluster

Flags add to (and override) a spec file's values. Runs already done are skipped, so the same
command again resumes a sweep that was stopped. `--dry-run` lists the runs and trains none.
"""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    from acc_core import sweep_run

    s = sub.add_parser("sweep", help="train a grid of runs: methods x scenarios x seeds x fields",
                       description=__doc__.splitlines()[0])
    s.add_argument("spec", nargs="?", help="a sweep spec file (.json or .toml) with keys name, "
                   "methods, scenarios, seeds, preset, data, set")
    s.add_argument("--method", nargs="+", help="methods (default: each scenario's own; acc)")
    s.add_argument("--scenario", nargs="+", help="named scenarios (`acc pretrained list`): "
                   "their data and weak supervision")
    s.add_argument("--seeds", help="e.g. 0-49 or 0,1,2 (default 0)")
    s.add_argument("--preset", help="quick or paper (default: a scenario's own config, else quick)")
    s.add_argument("--data", help="data source when no scenario is given")
    s.add_argument("--set", action="append", default=[], metavar="FIELD=V[,V...]",
                   help="any config field, e.g. train.steps=300; several values make an axis")
    s.add_argument("--name", help="the sweep's name in the app (default: from its runs)")
    s.add_argument("--engine", default="auto", choices=sweep_run.ENGINES,
                   help="auto: Ray when installed, else one run at a time here")
    s.add_argument("--address", help="join this Ray cluster (e.g. ray://head:10001 or auto)")
    s.add_argument("--cpus", type=int, help="embedded Ray's CPUs (default: all of this machine's)")
    s.add_argument("--cpus-per-trial", type=int, default=1,
                   help="CPUs and torch threads of each run (default 1)")
    s.add_argument("--gpus-per-trial", type=float, default=0.0)
    s.add_argument("--retries", type=int, default=3, help="retries of a trial whose process died")
    s.add_argument("--shared-store", action="store_true",
                   help="cluster: every node sees the run store at the same path (ACC_HOME); "
                        "trials train into it instead of returning their run folders")
    s.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    s.add_argument("--dry-run", action="store_true", help="list the runs; train nothing")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(fn=cmd_sweep)


def spec_from_args(args) -> dict:
    """The spec file's values, then the flags'."""
    from acc_core import sweep

    spec = sweep.load_spec(args.spec) if args.spec else {}
    for key, flag in (("methods", args.method), ("scenarios", args.scenario),
                      ("seeds", args.seeds), ("preset", args.preset), ("data", args.data),
                      ("name", args.name)):
        if flag is not None:
            spec[key] = flag
    fields = dict(spec.get("set") or {})
    for item in args.set:
        name, values = sweep.parse_set(item)
        fields[name] = list(values)  # a list is an axis (of one value, maybe)
    if fields:
        spec["set"] = fields
    return spec


def cmd_sweep(args) -> int:
    from acc_core import sweep, sweep_run
    from acc_core.store import RunStore

    spec = spec_from_args(args)
    configs = sweep.expand(sweep.grid_from(spec))
    store = RunStore()
    if args.dry_run:
        for cfg in configs:
            rec = store.get(cfg.run_id)
            print(f"{cfg.run_id}  {(rec.status if rec else 'new'):<12}{cfg.describe()}")
        print(f"{len(configs)} runs; nothing trained (--dry-run)")
        return 0
    engine = sweep_run.pick_engine(args.engine, args.address)
    if args.engine == "auto" and engine == "local":
        print("acc: notice: Ray is not installed, so the runs train one at a time here; "
              "pip install 'acc-explorer[cluster]' to train them in parallel", file=sys.stderr)
    print(f"sweep of {len(configs)} runs on {'Ray' if engine == 'ray' else 'this process'}"
          + (f" at {args.address}" if args.address else "") + f"; store {store.root}",
          file=sys.stderr)
    try:
        out = sweep_run.run_sweep(
            configs, store=store, engine=engine, name=spec.get("name"), spec=spec,
            address=args.address, cpus=args.cpus, cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial, retries=args.retries,
            shared_store=True if args.shared_store else None, device=args.device,
            on_progress=sweep_run.printer())
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted; the same command resumes the sweep\n")
        return 130
    sys.stderr.write("\n")
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "run_ids"}, indent=2))
    else:
        print(f"sweep {out['name']}: {out['done']} trained, {out['skipped']} already done, "
              f"{len(out['failed'])} failed of {out['total']} ({out['wall_s']:.0f} s)")
        for rid, reason in out["failed"].items():
            print(f"  failed {rid}: {reason}")
    return 0 if not out["failed"] else 1

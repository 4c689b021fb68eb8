"""`acc`: train, list, cancel and evaluate runs; manage data; run the background worker.

Errors a user can fix (an impossible config, a missing dataset) print one clear line and
exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
import time


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


def _held_out(items: list[str] | None) -> dict:
    out: dict[str, tuple[int, ...]] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--held-out expects FACTOR=V1,V2 (e.g. digit=9), got {item!r}")
        name, values = item.split("=", 1)
        try:
            out[name.strip()] = tuple(int(v) for v in _csv(values))
        except ValueError:
            raise ValueError(f"--held-out values must be integers, got {values!r}") from None
    return out


def config_from_args(args, base=None):
    """Preset first (or `base`, e.g. a named scenario's config), then every flag that was
    given overrides it."""
    from acc_core.config import SetSpec, preset

    from acc_core.data import default_method

    method = args.method or default_method(args.data)
    cfg = base if base is not None else preset(args.preset, args.data, method=method)
    d, m, t = cfg.data, cfg.model, cfg.train
    if args.image_size is not None:
        d = dataclasses.replace(d, image_size=args.image_size or None)
    if args.held_out is not None:
        d = dataclasses.replace(d, held_out=_held_out(args.held_out))
    set_a, set_b = cfg.set_a, cfg.set_b
    if args.inactive_a is not None:
        set_a = SetSpec(inactive=_csv(args.inactive_a))
    if args.inactive_b is not None:
        set_b = SetSpec(inactive=_csv(args.inactive_b))
    if args.b_unconstrained:
        set_b = SetSpec(inactive=())
    # the preset's model, with only what the flags name changed (its output gain stays)
    m = dataclasses.replace(
        m, encoder=args.encoder or m.encoder,
        embedding_dim=m.embedding_dim if args.embedding_dim is None else args.embedding_dim,
    )
    overrides = {
        "similarity": args.similarity,
        "temperature": args.temperature,
        "set_size": args.set_size,
        "pairs_per_step": args.pairs,
        "lr": args.lr,
        "steps": args.steps,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "snapshot_every": args.snapshot_every,
        "probe_size": args.probe_size,
        "precision": args.precision,
    }
    t = dataclasses.replace(t, **{k: v for k, v in overrides.items() if v is not None})
    if args.augment is not None:
        t = dataclasses.replace(t, augmentations=_csv(args.augment))
    if args.double_augmentation:
        t = dataclasses.replace(t, double_augmentation=True)
    return cfg.replace(data=d, set_a=set_a, set_b=set_b, model=m, train=t)


def _bar(step: int, steps: int, width: int = 30) -> str:
    done = int(width * step / max(steps, 1))
    return "[" + "#" * done + "." * (width - done) + "]"


def check_config(cfg):
    """Everything that makes a config impossible, before anything is queued: the config
    itself, the dataset (a missing one fails here), and the method's view of the scenario."""
    from acc_core import data as data_sources
    from acc_core.config import validate

    validate(cfg)
    dataset = data_sources.load_for(cfg.data)
    cfg.method.check(cfg, dataset)
    return dataset


def cmd_train(args) -> int:
    from acc_core.store import RunStore

    cfg = config_from_args(args)
    check_config(cfg)
    store = RunStore()
    store.reap_dead()  # a foreground run killed a moment ago is resumable at once
    rec = store.submit(cfg, label=args.label, retry=True)
    print(f"run {rec.run_id}: {cfg.describe()}")
    print(f"supervision: {cfg.method.supervision_text(cfg)}")
    if rec.status == "done":
        print(f"already trained (cache hit): {rec.dir}")
        return 0
    if args.queue:
        from acc_core.worker import ensure_worker

        # Nobody waits on this worker once this command returns: it exits a minute after
        # the queue is empty instead of idling for the app's ten minutes.
        started = ensure_worker(store.root, device=args.device, exit_with_me=False,
                                idle_exit=QUEUE_WORKER_IDLE_S)
        print(f"queued; {'started a worker' if started else 'a worker is already running'}")
        return 0
    return _train_in_foreground(store, rec, args.device)


def _train_in_foreground(store, rec, device) -> int:
    from acc_core.runner import train_claimed

    owner = f"cli-{os.getpid()}"
    claimed = store.claim(rec.run_id, owner, os.getpid())
    if not claimed:
        print(f"run {rec.run_id} is being trained by another process; follow it with `acc runs`")
        return 0
    last = [0.0]
    tty = sys.stderr.isatty()
    every = max(1, rec.config.train.steps // 10)  # not a terminal: one line per 10%

    def progress(p: dict) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and p["step"] != p["steps"]:
            return
        last[0] = now
        if not tty and p["step"] % every and p["step"] != p["steps"]:
            return
        eta = p.get("eta_s")
        sys.stderr.write(
            ("\r" if tty else "") + f"{_bar(p['step'], p['steps'])} {p['step']}/{p['steps']} "
            f"loss {p['loss']:.4f}  {p['steps_per_s']:.1f} steps/s"
            + (f"  eta {eta:.0f}s " if eta is not None else " ") + ("" if tty else "\n")
        )
        sys.stderr.flush()

    try:
        out = train_claimed(store, claimed, owner, device=device, on_progress=progress)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted; `acc train` with the same flags resumes it\n")
        return 130
    sys.stderr.write("\n")
    if out["lost"]:
        print(f"run {rec.run_id} was taken over by another process; see `acc runs`")
        return 1
    print(f"{out['status']} at step {out['step']}" +
          (f": {out['reason']}" if out["reason"] else "") + f"  ({rec.dir})")
    return 0 if out["status"] == "done" else 1


def cmd_methods(args) -> int:
    from acc_core import methods

    rows = [(m.name, m.supervision, ", ".join(m.representations), m.title)
            for m in methods.all_methods()]
    if args.json:
        print(json.dumps([{"name": n, "supervision": s, "representations": r.split(", "),
                           "presets": ["quick", "paper"], "title": t} for n, s, r, t in rows],
                         indent=2))
        return 0
    w = max(len(r[0]) for r in rows) + 2
    print(f"{'method':<{w}}{'supervision':<13}{'presets':<13}{'representations':<24}what")
    for n, s, r, t in rows:
        reps = r.split(", ")  # many codes (mixing: code, chunk0 .. chunk7) shown as a range
        r = r if len(reps) <= 4 else f"{reps[0]}, {reps[1]} .. {reps[-1]}"
        print(f"{n:<{w}}{s:<13}{'quick, paper':<13}{r:<24}{t}")
    return 0


QUEUE_WORKER_IDLE_S = 60.0  # `acc train --queue`: the worker's idle time before it exits


def first_new_seed(store, tries: int = 50) -> int:
    """The first seed of the quick preset that is not trained yet (shipped runs count),
    so a suggested command trains something instead of opening a cache hit."""
    import dataclasses

    from acc_core.config import preset

    cfg = preset("quick", "shapes3d-procedural")
    for seed in range(tries):
        rec = store.get(cfg.replace(train=dataclasses.replace(cfg.train, seed=seed)).run_id)
        if rec is None or rec.status != "done":
            return seed
    return tries


def cmd_runs(args) -> int:
    from acc_core.store import RunStore

    store = RunStore()
    store.reap_dead()
    runs = store.list_runs(include_pretrained=not args.user_only)
    if args.json:
        print(json.dumps([{"run_id": r.run_id, "status": r.status, "step": r.step,
                           "steps": r.steps, "label": r.label, "source": r.source,
                           "reason": r.reason} for r in runs], indent=2))
        return 0
    print(f"run store: {store.root}  (set ACC_HOME to use another)")
    if not runs:
        print(f"no runs yet: `acc train --preset quick --seed {first_new_seed(store)}` "
              "trains a new one")
        return 0
    print(f"{'run':<14}{'status':<13}{'progress':<14}{'source':<12}label")
    for r in runs:
        prog = f"{r.step}/{r.steps}"
        label = r.label or r.config.describe()
        extra = f"  ({r.reason})" if r.reason and r.status in ("failed", "interrupted") else ""
        print(f"{r.run_id:<14}{r.status:<13}{prog:<14}{r.source:<12}{label}{extra}")
    return 0


def cmd_cancel(args) -> int:
    from acc_core.store import RunStore

    store = RunStore()
    run_id = store.resolve(args.run)
    store.request_cancel(run_id)
    print(f"cancel requested for {run_id}: now {store.get(run_id).status}")
    return 0


def cmd_worker(args) -> int:
    from acc_core.worker import run_worker

    run_worker(device=args.device, once=args.once, idle_exit=args.idle_exit, precompute=True)
    return 0


def cmd_eval(args) -> int:
    from acc_core import evaluate

    reps = [args.representation] if args.representation else list(evaluate.representations(args.run))
    out = [evaluate.report(args.run, sigma=args.sigma, rep=r) for r in reps]
    if args.json:
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2, default=float))
    else:
        print("\n\n".join(evaluate.format_report(r) for r in out))
    return 0


def cmd_leaderboard(args) -> int:
    from acc_core import leaderboard
    from acc_core.store import RunStore

    store = RunStore()
    recs = [r for r in store.list_runs()
            if (not args.dataset or r.config.data.source in args.dataset)
            and (not args.method or r.config.train.method in args.method)
            and (not args.scenario or leaderboard.scenario_label(r.config) in args.scenario)]

    def progress(i, n, label):
        print(f"\rscoring {i + 1}/{n}: {label[:60]:<60}", end="", file=sys.stderr, flush=True)

    rows, skipped = leaderboard.rows(recs, args.align, compute=args.compute,
                                     progress=progress if args.compute else None)
    if args.compute:
        print(file=sys.stderr)
    if args.csv:
        leaderboard.frame(rows).to_csv(args.csv, index=False)
        print(f"wrote {len(rows)} rows to {args.csv}")
    elif args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"scores after alignment '{args.align}', DCI in fast mode, on each run's final probe; "
              "mean±std over seeds")
        print(leaderboard.format_table(rows))
    if skipped:
        print(f"{len(skipped)} finished run(s) have no cached scores yet: "
              "`acc leaderboard --compute` scores them", file=sys.stderr)
    return 0


def cmd_data(args) -> int:
    from acc_core import data as data_sources

    if args.action == "list":
        for name in data_sources.available():
            print(f"{name:<22}{data_sources.manifest(name).get('description', '')}")
        return 0
    if args.action == "info":
        ds = data_sources.load(args.name)
        print(json.dumps(ds.describe(), indent=2))
        return 0
    if args.action == "render":
        if args.name != "shapes3d-procedural":
            raise ValueError("only shapes3d-procedural can be rendered; others are downloaded")
        from acc_core.data.shapes3d_procedural import materialise

        path = materialise(size=args.size)
        print(f"rendered to {path}")
        return 0
    if args.action == "download":
        if args.name == "mnist":
            from acc_core.data.mnist import download_mnist

            print(f"downloaded to {download_mnist()}")
            return 0
        if args.name == "shapes3d":
            from acc_core.data.shapes3d import missing_message

            print(missing_message())
            return 2
        raise ValueError(f"{args.name} needs no download")
    return 2


def cmd_pretrained(args) -> int:
    from acc_core import pretrained

    if args.action == "list":
        rows = pretrained.list_pretrained()
        w = max([len(p["name"]) for p in rows] + [4]) + 2
        m = max([len(p.get("method", "")) for p in rows] + [6]) + 2
        print(f"{'name':<{w}}{'run':<14}{'method':<{m}}description")
        for p in rows:
            print(f"{p['name']:<{w}}{p['run_id']:<14}{p.get('method', ''):<{m}}"
                  f"{p.get('description', '')}")
        return 0
    if args.action == "build":
        pretrained.build(args.name.split(",") if args.name else None, device=args.device,
                         force=args.force)
        return 0
    if not args.name:
        raise ValueError("name the pretrained run to reproduce; `acc pretrained list` shows them")
    last = [0.0]

    def progress(p: dict) -> None:
        if time.monotonic() - last[0] >= 1.0 or p["step"] == p["steps"]:
            last[0] = time.monotonic()
            sys.stderr.write(f"\rretraining {args.name}: {_bar(p['step'], p['steps'])} "
                             f"{p['step']}/{p['steps']}")
            sys.stderr.flush()

    out = pretrained.reproduce(args.name, device=args.device, progress=progress)
    sys.stderr.write("\n")
    print(json.dumps(out, indent=2, default=float) if args.json
          else pretrained.format_reproduction(out))
    return 0 if out["reproduced"] else 1


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line (what is wrong, where the help is), not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    from acc_core import data as data_sources
    from acc_core import methods
    from acc_core.analysis.metrics.align import ALIGNMENTS
    from acc_core.augment import AUGMENTATIONS
    from acc_core.config import PRECISIONS, PRESETS
    from acc_core.losses import SIMILARITIES
    from acc_core.models import list_encoders

    p = _Parser(prog="acc", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    me = sub.add_parser("methods", help="list the methods, their supervision and presets")
    me.add_argument("--json", action="store_true")
    me.set_defaults(fn=cmd_methods)

    t = sub.add_parser("train", help="train a run (or return the cached one)")
    t.add_argument("--preset", default="quick", choices=list(PRESETS))
    t.add_argument("--data", default="shapes3d-procedural", choices=data_sources.available(),
                   help="data source (default shapes3d-procedural)")
    t.add_argument("--inactive-a", help="comma-separated inactive factors of set A")
    t.add_argument("--inactive-b", help="comma-separated inactive factors of set B")
    t.add_argument("--b-unconstrained", action="store_true", help="set B: no inactive factor")
    t.add_argument("--held-out", action="append", help="FACTOR=V1,V2 value indices never trained on")
    t.add_argument("--method", choices=methods.names(),
                   help="default acc; `acc methods` lists them with their supervision")
    t.add_argument("--similarity", choices=list(SIMILARITIES))
    t.add_argument("--temperature", type=float)
    t.add_argument("--set-size", type=int)
    t.add_argument("--pairs", type=int, help="set pairs per step")
    t.add_argument("--lr", type=float)
    t.add_argument("--steps", type=int)
    t.add_argument("--encoder", help=f"ACC's encoder: {', '.join(list_encoders())}")
    t.add_argument("--embedding-dim", type=int)
    t.add_argument("--image-size", type=int, help="0 keeps the source's size")
    t.add_argument("--augment", help=f"comma-separated: {','.join(AUGMENTATIONS)}")
    t.add_argument("--double-augmentation", action="store_true")
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=list(PRECISIONS),
                   help="bfloat16: bf16 autocast where the hardware has it (the quick preset); "
                        "float32: exact float32 everywhere; default: bf16 on a GPU only")
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--snapshot-every", type=int)
    t.add_argument("--probe-size", type=int)
    t.add_argument("--label")
    t.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    t.add_argument("--queue", action="store_true", help="queue for the background worker")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("runs", help="list runs with their status")
    r.add_argument("--json", action="store_true")
    r.add_argument("--user-only", action="store_true")
    r.set_defaults(fn=cmd_runs)

    c = sub.add_parser("cancel", help="cancel a queued or running run")
    c.add_argument("run")
    c.set_defaults(fn=cmd_cancel)

    w = sub.add_parser("worker", help="train queued runs in the background")
    w.add_argument("--device")
    w.add_argument("--once", action="store_true", help="exit when the queue is empty")
    w.add_argument("--idle-exit", type=float, default=None)
    w.set_defaults(fn=cmd_worker)

    e = sub.add_parser("eval", help="compute and cache a run's standard report")
    e.add_argument("run")
    e.add_argument("--sigma", type=float, default=None,
                   help="noise scale (default: the loss's length scale, e.g. sqrt(tau), or a "
                        "quarter of the code's RMS radius for codes without one)")
    e.add_argument("--representation", help="one of the method's codes (default: every one)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_eval)

    lb = sub.add_parser("leaderboard", help="every method x scenario: disentanglement scores "
                                            "over seeds")
    lb.add_argument("--align", choices=list(ALIGNMENTS), default="none",
                    help="rotate codes before the axis-aligned scores (default: none)")
    lb.add_argument("--dataset", nargs="+", help="only these data sources")
    lb.add_argument("--method", nargs="+", help="only these methods")
    lb.add_argument("--scenario", nargs="+", help="only these scenarios, e.g. 'A[wall_hue] B[wall_hue]'")
    lb.add_argument("--compute", action="store_true", help="score finished runs without cached scores")
    lb.add_argument("--csv", help="write the table to this CSV file")
    lb.add_argument("--json", action="store_true")
    lb.set_defaults(fn=cmd_leaderboard)

    d = sub.add_parser("data", help="data sources: list, info, render, download")
    d.add_argument("action", choices=["list", "info", "render", "download"])
    d.add_argument("name", nargs="?", default="shapes3d-procedural")
    d.add_argument("--size", type=int, default=64)
    d.set_defaults(fn=cmd_data)

    pr = sub.add_parser("pretrained", help="shipped runs: list, reproduce NAME")
    pr.add_argument("action", choices=["list", "reproduce", "build"],
                    help="build NAMES trains and exports scenarios into pretrained/")
    pr.add_argument("name", nargs="?")
    pr.add_argument("--device")
    pr.add_argument("--force", action="store_true", help="build: retrain even if shipped")
    pr.add_argument("--json", action="store_true", help="reproduce: print JSON")
    pr.set_defaults(fn=cmd_pretrained)

    from acc_core.sweep_cli import add_parser as add_sweep_parser

    add_sweep_parser(sub)

    from acc_core.export_cli import add_parser as add_export_parser

    add_export_parser(sub)
    return p


def main(argv=None) -> int:
    from acc_core.data import DataError

    import warnings

    # A notice (e.g. an unofficial data file) is one line, not a warning with source lines.
    warnings.showwarning = lambda message, *a, **k: print(f"acc: notice: {message}",
                                                          file=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:  # `acc ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, DataError, FileNotFoundError) as e:  # the user can fix these
        print(f"acc: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.ENOSPC:
            print(f"acc: error: the disk is full ({e.filename or 'writing a file'}); free some "
                  "space or set ACC_HOME / ACC_DATA_DIR to another disk, then run the same "
                  "command again (it resumes)", file=sys.stderr)
            return 2
        return _unexpected(e)
    except Exception as e:  # a bug, not a user error: say so, keep the traceback
        return _unexpected(e)


def _unexpected(e: BaseException) -> int:
    """One line on the terminal; the whole traceback in a log the message names."""
    import traceback

    from acc_core.paths import acc_home

    path = acc_home() / "acc-errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} acc {' '.join(sys.argv[1:])}\n")
            f.write("".join(traceback.format_exception(e)))
        where = f"the traceback is in {path}"
    except OSError:
        where = "traceback:\n" + "".join(traceback.format_exception(e))
    print(f"acc: unexpected error (a bug, not something you did): {type(e).__name__}: {e}; "
          f"{where}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

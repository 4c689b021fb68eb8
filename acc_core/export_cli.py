"""`acc export RUN --format parquet|csv|tensorboard`: a run's codes for pandas or TensorBoard's
projector (`acc_core.export` writes them; this is the command line around it)."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    from acc_core.export import FORMATS, SAMPLES

    e = sub.add_parser("export", help="write a run's codes as parquet, csv or a TensorBoard "
                                      "projector folder",
                       description="One row per image: the code, every factor (index, value, "
                                   "label), the image index and split.")
    e.add_argument("run", help="a run id (or unique prefix) or a shipped run's name")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--step", default="final", help="a snapshot step, or final (default) / initial")
    e.add_argument("--representation", help="one of the method's codes (default: its first)")
    e.add_argument("--sample", default="probe", choices=SAMPLES,
                   help="probe: the snapshot's probe subset (default); large: the whole-dataset "
                        "view's sample (final step; computed on the Embeddings page)")
    e.add_argument("--out", default=".", help="folder to write into (default: here)")
    e.add_argument("--json", action="store_true", help="print what was written as JSON")
    e.set_defaults(fn=run)


def run(args) -> int:
    from acc_core import export

    step = args.step if args.step in ("final", "initial") else _int_step(args.step)
    res = export.write(args.run, args.format, args.out, step, args.representation, args.sample)
    if args.json:
        print(json.dumps({"format": res.format, "path": str(res.path), "rows": res.rows,
                          "total": res.total, "notes": list(res.notes),
                          "seconds": round(res.seconds, 3)}, indent=2))
        return 0
    print(f"wrote {res.rows:,} rows to {res.path} in {res.seconds:.1f} s")
    for note in res.notes:
        print(f"note: {note}")
    if res.format == "tensorboard":
        print(f"open it with: tensorboard --logdir {res.path}  (the Projector tab)")
    return 0


def _int_step(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--step takes a step number, final or initial; got {text!r}") from None

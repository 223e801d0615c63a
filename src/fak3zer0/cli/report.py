"""``fak3zer0 report DB --out report.html``: a self-contained HTML report of a scan."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = """Write a single-file HTML report of a results database written by `fak3zer0 scan`:
summary counts, a histogram of fake probabilities, the most suspicious files with the face
the model found most suspicious, and the errors. Everything is inline (no external files or
network), so the report can be mailed or archived as is."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="self-contained HTML report of a scan's results",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("db", metavar="DB", help="results database: SQLite file or SQLAlchemy URL")
    p.add_argument("--out", required=True, metavar="FILE", help="HTML file to write")
    p.add_argument("--top", type=int, default=50, metavar="N", help="list the N most suspicious files (default: 50)")
    p.add_argument("--model", metavar="NAME", help="only rows of this model")
    p.add_argument("--title", default="Fak3Zer0 scan report", help="report title")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from pathlib import Path

    from fak3zer0.errors import Fak3Zer0Error
    from fak3zer0.scan.report import write_report
    from fak3zer0.store import ResultStore

    if "://" not in args.db and not Path(args.db).is_file():
        raise Fak3Zer0Error(f"no results database at {args.db} (run `fak3zer0 scan ... --db {args.db}` first)")
    store = ResultStore.open(args.db)
    out = write_report(store, args.out, top=args.top, model=args.model, db_label=args.db, title=args.title)
    print(f"report written to {out}", file=sys.stderr)
    return 0

"""``fak3zer0 results DB``: list or export what ``fak3zer0 scan`` stored."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = """List or export the rows of a results database written by `fak3zer0 scan`.

Rows come most suspicious first. Formats: an aligned text table (default), CSV, JSON (one
object per row, with the full `detect --json` result under "result") or Parquet (needs
pyarrow; writes --out FILE)."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("results", help="list/export a scan's results (table, csv, json, parquet)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("db", metavar="DB", help="results database: SQLite file or SQLAlchemy URL")
    p.add_argument("--fake-only", action="store_true", help="only files whose verdict is fake")
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table",
                   help="output format (default: table)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout (required for parquet)")
    p.add_argument("--model", metavar="NAME", help="only rows of this model (as stored, see the table)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N rows")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from fak3zer0.errors import Fak3Zer0Error
    from fak3zer0.scan.export import _pyarrow, export
    from fak3zer0.store import ResultStore

    if args.format == "parquet":
        _pyarrow()
    if "://" not in args.db:
        from pathlib import Path

        if not Path(args.db).is_file():
            raise Fak3Zer0Error(f"no results database at {args.db} (run `fak3zer0 scan ... --db {args.db}` first)")
    store = ResultStore.open(args.db)
    try:
        n = export(store, args.format, args.out, fake_only=args.fake_only, model=args.model, limit=args.limit)
    except BrokenPipeError:  # `fak3zer0 results db | head`: the reader left, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if args.out and args.out != "-":
        print(f"{n} row(s) written to {args.out}", file=sys.stderr)
    return 0

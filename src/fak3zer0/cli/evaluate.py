"""``fak3zer0 evaluate MODEL --data D``: metrics, plots and cross-dataset tables."""
from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """Evaluate a checkpoint (or a shipped model name) on one or more face-crop caches or datasets.

Reports frame-level and video-level AUC, log loss (clipped as in DFDC), EER, AP, accuracy and
balanced accuracy (at 0.5 and at the EER threshold), writes metrics.json / metrics.md, ROC and PR
plots and a score histogram. --matrix builds the cross-dataset table (rows: models, columns: data).

examples:
  fak3zer0 evaluate runs/meso4/best.pt --data cache/dev --split test
  fak3zer0 evaluate fak3zer0-default --data ../celebdf --layout celebdf --json
  fak3zer0 evaluate runs/a/best.pt,runs/b/best.pt --data cache/dfdc --data cache/celebdf --matrix"""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="metrics and plots for a model on data", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint, run folder, shipped model name or ARCH:WEIGHTS "
                                 "(with --matrix: comma-separated list or a folder of runs)")
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="cache folder, or dataset folder with --layout (repeatable)")
    p.add_argument("--layout", default=None, help="dataset layout for --data folders that are not caches yet")
    p.add_argument("--split", action="append", default=None, metavar="SPLIT",
                   help="only score these splits (repeatable; default: everything)")
    p.add_argument("--include-source", action="append", default=None, metavar="REGEX",
                   help="only entries whose source matches (repeatable; e.g. a left-out source)")
    p.add_argument("--exclude-source", action="append", default=None, metavar="REGEX",
                   help="drop entries whose source matches (repeatable)")
    p.add_argument("--kind", choices=["image", "video"], default=None, help="only images or only videos")
    p.add_argument("--out", default=None, help="output folder (default runs/eval/<model>-<time>)")
    p.add_argument("--matrix", action="store_true", help="cross-dataset table instead of one evaluation")
    p.add_argument("--json", action="store_true", help="print the metrics object on stdout")
    p.set_defaults(func=run)
    return p


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def run(args) -> int:
    from fak3zer0.cli._common import format_table
    from fak3zer0.evaluate.runner import evaluate_from_cli

    data = args.data
    if args.include_source or args.exclude_source or args.kind:
        data = [{"path": d, "include_sources": args.include_source, "exclude_sources": args.exclude_source,
                 "kinds": [args.kind] if args.kind else None} for d in data]
    result = evaluate_from_cli(args.model, data, layout=args.layout, out=args.out, matrix=args.matrix,
                               splits=args.split)
    if args.json:
        if args.matrix:
            json.dump(result, sys.stdout, indent=2, default=str)
        else:
            json.dump({"frame": result["frame"], "video": result["video"]}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if args.matrix:
        from fak3zer0.evaluate.runner import matrix_markdown

        print(matrix_markdown(result))
        return 0
    keys = ["auc", "log_loss", "eer", "ap", "accuracy", "balanced_accuracy", "n"]
    rows = [[level] + [_fmt(result[level].get(k)) for k in keys] for level in ("frame", "video")]
    print(format_table(["level"] + keys, rows, "l" + "r" * len(keys)))
    files = result.get("files") or {}
    if files:
        print("\nwrote: " + ", ".join(str(v) for v in files.values()))
    return 0

"""``fak3zer0 calibrate CHECKPOINT --data VAL``: fit temperature scaling and store it in the checkpoint."""
from __future__ import annotations

import argparse
import json


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("calibrate", help="fit temperature scaling on validation data",
                       description="Fit a temperature on validation data so that fake_probability means what it "
                                   "says, pick the frame->video aggregation rule, and write both into the "
                                   "checkpoint (or --output). Reports expected calibration error before/after.")
    p.add_argument("checkpoint")
    p.add_argument("--data", action="append", required=True, metavar="PATH", help="cache or dataset folder")
    p.add_argument("--layout", default=None)
    p.add_argument("--split", action="append", default=None, help="splits to fit on (default: val)")
    p.add_argument("--output", default=None, help="write a new checkpoint instead of updating in place")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from fak3zer0.evaluate.runner import calibrate

    report = calibrate(args.checkpoint, args.data, layout=args.layout, splits=tuple(args.split or ["val"]),
                       output=args.output)
    print(json.dumps(report, indent=2, default=str))
    return 0

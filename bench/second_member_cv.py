"""Which second member serves v4's recipe best on a source it never saw? Leave-one-source-out, v4's own weight rule.

    python bench/second_member_cv.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --pair talking-face reference MIXED_DFDC SBI224_DFDC --pair talking-face candidate MIXED_DFDC OTHER_DFDC \\
        --pair dfdc reference MIXED_TF SBI224_TF --pair dfdc candidate MIXED_TF OTHER_TF [--work runs/weight_cv]

A ``--pair LEFT_OUT NAME MIXED SECOND`` is the mixed member and a second member, both trained without
``LEFT_OUT``. Each pair is joined as v4's recipe joins its members (raw logit sum with the second member's weight
the largest in 0 ... 0.5 whose val AUC is within 0.02 of the mixed member's alone, temperature refitted on the
training source's val) and scored on every input of the left-out source as bench/source_eval.py scores them, with
bench/ensemble_weight_cv.py's machinery and logit cache. Per direction, every pair's AUC minus the first pair's
comes with a paired-bootstrap interval. Prints a table and writes bench/results/second_member_cv.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--videos", type=Path, required=True)
    ap.add_argument("--pair", nargs=4, action="append", required=True, metavar=("LEFT_OUT", "NAME", "MIXED", "SECOND"))
    ap.add_argument("--work", type=Path, default=ROOT / "runs/weight_cv")
    ap.add_argument("--max-crops", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/second_member_cv.json")
    args = ap.parse_args(argv)
    import torch
    from ensemble_weight_cv import direction_scores, sweep, v4_weight

    from fak3zer0.evaluate.metrics import paired_auc_difference

    torch.set_num_threads(args.threads)
    by_direction: dict[str, list[dict]] = defaultdict(list)
    for left_out, name, mixed, second in args.pair:
        scores = direction_scores(args, left_out, Path(mixed), Path(second))
        rows = sweep(scores)
        w = v4_weight(rows)
        row = next(r for r in rows if r["weight"] == w)
        by_direction[left_out].append({"name": name, "mixed": mixed, "second": second, "labels": scores["held_labels"],
                                       **row, "second_alone_val_auc": rows[-1]["val_auc"]})
    print(f"{'left out':<13} {'pair':<12} {'weight':>6} {'val AUC':>7} {'2nd val':>7} {'AUC':>6} {'log loss':>8} "
          f"{'real>=.5':>8} {'fake>=.5':>8}  AUC minus first pair's")
    report = []
    for left_out, pairs in by_direction.items():
        first = pairs[0]
        for p in pairs:
            diff = paired_auc_difference(p["labels"], p["p"], first["p"]) if p is not first else None
            print(f"{left_out:<13} {p['name']:<12} {p['weight']:>6.2f} {p['val_auc']:>7.3f} "
                  f"{p['second_alone_val_auc']:>7.3f} {p['auc']:>6.3f} {p['log_loss']:>8.3f} {p['real_flagged']:>8.3f} "
                  f"{p['fake_flagged']:>8.3f}  " + (f"{diff['difference']:+.3f} [{diff['ci95'][0]:+.3f}, "
                                                   f"{diff['ci95'][1]:+.3f}]" if diff else ""))
            report.append({"left_out": left_out, **{k: v for k, v in p.items() if k not in ("p", "labels")},
                           "paired_vs_first": diff})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None, "pairs": report},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

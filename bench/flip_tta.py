"""Horizontal-flip test-time augmentation on sources the members never saw.

    python bench/flip_tta.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED_DFDC SBI224_DFDC --direction dfdc MIXED_TF SBI224_TF \\
        [--work runs/weight_cv] [--rule RULE.md]

For each member pair (bench/ensemble_weight_cv.py's pairs and logit cache), every validation and
left-out crop is scored again mirrored left-right; each member's logit becomes the mean of the two. The
v4 procedure then runs unchanged on the averaged logits (weight by its rule on validation, temperature
refit) and is compared with the same procedure on the plain logits, on the same left-out inputs.
Prints a table and writes bench/results/flip_tta.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def mirrored(crops: np.ndarray) -> np.ndarray:
    """``(n, h, w, 3)`` crops mirrored left-right."""
    return np.ascontiguousarray(crops[:, :, ::-1])


def tta_scores(args, left: str, mixed: Path, sbi: Path, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``scores`` with every member logit averaged with its logit on the mirrored crop (cached in --work)."""
    from ensemble_weight_cv import (LEFT_OUT_INPUTS, TRAINING_SOURCE, cached, left_out_inputs, member_logits,
                                    pair_model, validation_crops)

    def make() -> dict[str, np.ndarray]:
        model = pair_model(mixed, sbi)
        size = model.input_spec.size
        val_crops, val_labels = validation_crops([args.images, args.videos], size, TRAINING_SOURCE[left])
        kind, group = LEFT_OUT_INPUTS[left]
        inputs, labels = left_out_inputs(getattr(args, kind), group, size, args.max_crops)
        if not np.array_equal(val_labels, scores["val_labels"]) or not np.array_equal(labels, scores["held_labels"]):
            raise SystemExit(f"{left}: the caches no longer match the logit cache; rebuild it")
        return {"val_logits": member_logits(model, mirrored(val_crops)),
                "held_logits": member_logits(model, mirrored(np.concatenate(inputs)))}

    flipped = cached(args.work, f"{left}-flipped", f"{left}|{mixed.resolve()}|{sbi.resolve()}|{args.max_crops}", make)
    return {**scores, **{k: (scores[k] + flipped[k]) / 2 for k in ("val_logits", "held_logits")}}


def procedure(scores: dict[str, np.ndarray]) -> dict:
    """The v4 procedure on these logits: its weight, temperature and left-out input probabilities."""
    from ensemble_weight_cv import sweep, v4_weight

    rows = sweep(scores)
    w = v4_weight(rows)
    return next(r for r in rows if r["weight"] == w)


def report(row: dict) -> dict:
    """The figures of one procedure's row that the result file keeps."""
    return {"weight": row["weight"], "temperature": round(row["temperature"], 4), "val_auc": round(row["val_auc"], 4),
            "auc": round(row["auc"], 4), "log_loss": round(row["log_loss"], 4),
            "real_flagged": round(row["real_flagged"], 4), "fake_flagged": round(row["fake_flagged"], 4)}


def main(argv: list[str] | None = None) -> int:
    from ensemble_weight_cv import add_direction_arguments, direction_scores, parse_direction_arguments
    from fak3zer0.evaluate.metrics import paired_auc_difference

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/flip_tta.json")
    args = parse_direction_arguments(ap, argv)
    result = {"rule": args.rule.read_text() if args.rule else None,
              "directions": [list(d) for d in args.direction], "rows": []}
    print(f"{'left out':<13} {'inputs':>6} {'AUC tta':>7} {'plain':>6} {'gain [95 %]':>24} {'w tta/plain':>11} "
          f"{'reals>=.5':>11} {'fakes>=.5':>11}")
    for left, mixed, sbi in args.direction:
        plain = direction_scores(args, left, Path(mixed), Path(sbi))
        base, tta = procedure(plain), procedure(tta_scores(args, left, Path(mixed), Path(sbi), plain))
        y = plain["held_labels"]
        d = paired_auc_difference(y, tta["p"], base["p"])
        r = {"left_out": left, "inputs": int(len(y)), "tta": report(tta), "plain": report(base), "vs_plain": d}
        result["rows"].append(r)
        print(f"{left:<13} {len(y):>6} {tta['auc']:>7.3f} {base['auc']:>6.3f} {d['difference']:>+7.3f} "
              f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] {tta['weight']:>5.2f}/{base['weight']:.2f} "
              f"{tta['real_flagged']:>5.2f}/{base['real_flagged']:.2f} {tta['fake_flagged']:>5.2f}/"
              f"{base['fake_flagged']:.2f}", flush=True)
    rows = result["rows"]
    result["adopt"] = all(r["vs_plain"]["difference"] >= 0.01 and r["vs_plain"]["ci95"][1] >= 0 for r in rows)
    print(f"gate: gain >= +0.01 in every direction, no interval wholly below 0 -> adopt: {result['adopt']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

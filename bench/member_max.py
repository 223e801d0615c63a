"""Join the two members by the larger calibrated probability instead of v4's weighted logit mean.

    python bench/member_max.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED SBI_S0 --direction talking-face MIXED SBI_S1 --direction dfdc MIXED SBI \\
        --shipped-logits WEIGHT_CV_CACHE/shipped-HASH.npz [--work WEIGHT_CV_CACHE] [--rule RULE.md]

For each member pair (bench/ensemble_weight_cv.py's logit cache): each member's temperature is fitted on
the direction's own val split; a crop's probability is the larger (``max``) or the mean (``mean``) of the
two calibrated probabilities; an input's is the mean of its crops'. Compared with the v4 procedure on the
same pair (weighted logit mean, weight by v4's rule, joint temperature): left-out AUC, share of left-out
reals / fakes called fake at 0.5, paired AUC difference; and the shipped members' val AUC under each
combination. Prints a table and writes bench/results/member_max.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

COMBINE = {"max": np.maximum, "mean": lambda a, b: (a + b) / 2}


def calibrated(val_logits: np.ndarray, val_labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Each member's logits on ``logits`` as probabilities, with its own temperature fitted on val."""
    from fak3zer0.evaluate.metrics import fit_temperature, sigmoid

    return np.stack([sigmoid(z / fit_temperature(v, val_labels)) for v, z in zip(val_logits, logits)])


def rates(p: np.ndarray, y: np.ndarray) -> dict:
    from fak3zer0.evaluate.metrics import roc_auc

    return {"auc": round(roc_auc(y, p), 4), "real_flagged": round(float((p[y == 0] >= 0.5).mean()), 4),
            "fake_flagged": round(float((p[y == 1] >= 0.5).mean()), 4)}


def pair_rows(scores: dict[str, np.ndarray]) -> dict[str, dict]:
    """v4 procedure vs each combination on one pair's left-out inputs."""
    from ensemble_weight_cv import sweep, v4_weight
    from fak3zer0.evaluate.metrics import paired_auc_difference
    from source_eval import per_input

    y = scores["held_labels"]
    rows = sweep(scores)
    base = next(r for r in rows if r["weight"] == v4_weight(rows))
    probs = calibrated(scores["val_logits"], scores["val_labels"], scores["held_logits"])
    out = {"v4": {"weight": base["weight"], **rates(base["p"], y)}}
    for name, join in COMBINE.items():
        p = per_input(join(*probs), scores["held_counts"])
        out[name] = {**rates(p, y), "vs_v4": paired_auc_difference(y, p, base["p"])}
    return out


def shipped_val(path: Path) -> dict[str, float]:
    """The shipped members' val AUC: the first member alone and each combination (temperatures fitted there)."""
    from fak3zer0.evaluate.metrics import roc_auc

    z = np.load(path)
    probs = calibrated(z["logits"], z["labels"], z["logits"])
    return {"first member": round(roc_auc(z["labels"], z["logits"][0]), 4),
            **{name: round(roc_auc(z["labels"], join(*probs)), 4) for name, join in COMBINE.items()}}


def decide(directions: dict[str, list[dict]], val: dict[str, float]) -> dict:
    """The registered rule for ``max`` (text in --rule)."""
    checks = {}
    for name, pairs in directions.items():
        gain = float(np.mean([p["max"]["auc"] - p["v4"]["auc"] for p in pairs]))
        checks[f"(1) {name} left out: AUC gain {gain:+.3f} >= +0.02"] = gain >= 0.02
        flags = [float(np.mean([p[k]["real_flagged"] for p in pairs])) for k in ("max", "v4")]
        checks[f"(2) {name} left out: reals flagged {flags[0]:.2f} <= {flags[1]:.2f}"] = flags[0] <= flags[1]
    checks[f"(3) shipped val AUC {val['max']:.3f} >= {val['first member']:.3f} - 0.05"] = \
        val["max"] >= val["first member"] - 0.05
    return {"adopt": all(checks.values()), "reasons": [f"{k}: {'holds' if ok else 'fails'}" for k, ok in checks.items()]}


def main(argv: list[str] | None = None) -> int:
    from ensemble_weight_cv import add_direction_arguments, direction_scores, parse_direction_arguments

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--shipped-logits", type=Path, required=True,
                    help="the shipped members' val logits from bench/ensemble_weight_cv.py's cache (shipped-*.npz)")
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/member_max.json")
    args = parse_direction_arguments(ap, argv)
    directions: dict[str, list[dict]] = defaultdict(list)
    print(f"{'left out':<13} {'pair':>4} {'join':<5} {'AUC':>6} {'reals>=.5':>9} {'fakes>=.5':>9} {'vs v4 [95 %]':>24}")
    for left, mixed, sbi in args.direction:
        rows = pair_rows(direction_scores(args, left, Path(mixed), Path(sbi)))
        directions[left].append(rows)
        for name, r in rows.items():
            d = r.get("vs_v4")
            vs = f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else f"(weight {r['weight']})"
            print(f"{left:<13} {len(directions[left]):>4} {name:<5} {r['auc']:>6.3f} {r['real_flagged']:>9.3f} "
                  f"{r['fake_flagged']:>9.3f} {vs:>24}")
    val = shipped_val(args.shipped_logits)
    print("shipped members' val AUC: " + ", ".join(f"{k} {v:.3f}" for k, v in val.items()))
    decision = decide(directions, val)
    print("\n".join(decision["reasons"]) + f"\nadopt max as a v5 candidate: {decision['adopt']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None,
                                    "directions": [list(d) for d in args.direction], "pairs": directions,
                                    "shipped_val_auc": val, "decision": decision}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

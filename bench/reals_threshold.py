"""A false-alarm threshold set on genuine footage only, tested on sources the models never saw.

    python bench/reals_threshold.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED_DFDC SBI224_DFDC --direction dfdc MIXED_TF SBI224_TF \\
        [--work runs/weight_cv] [--rule RULE.md]

What ``fak3zer0 threshold`` does for a user, simulated on the left-out source of each direction (the
v4 procedure's ensemble of a member pair trained without it, as in bench/unseen_calibration.py, from
bench/ensemble_weight_cv.py's logit cache): draw ``k`` of its real inputs at random, set the threshold
with :func:`fak3zer0.evaluate.metrics.false_alarm_threshold` at a false-alarm bound ``alpha``, and score
the source's other reals (false-alarm rate) and its fakes (detection rate). Repeated over random draws,
beside the fixed 0.5 threshold. A second table sets the threshold on every real of one talking-face
sub-source and reads false alarms on the others' reals (calibrated on one kind of footage, used on
another). Prints both and writes bench/results/reals_threshold.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

KS = (10, 20, 40)
ALPHAS = (0.05, 0.10, 0.20)
SUB_SOURCE_MIN_REALS = 10


def input_probs(model: dict) -> np.ndarray:
    """Each left-out input's probability: the mean of its crops' (temperature-scaled ensemble)."""
    from fak3zer0.evaluate.metrics import sigmoid
    from source_eval import per_input

    return per_input(sigmoid(model["u"]), model["counts"])


def simulate(p: np.ndarray, y: np.ndarray, k: int, alpha: float, draws: int, seed: int = 0) -> dict:
    """False-alarm and detection rates of thresholds set on ``k`` random reals, over ``draws`` draws."""
    from fak3zer0.evaluate.metrics import false_alarm_threshold

    rng, reals, fakes = np.random.default_rng(seed), p[y == 0], p[y == 1]
    fa, det = [], []
    for _ in range(draws):
        order = rng.permutation(len(reals))
        t = false_alarm_threshold(reals[order[:k]], alpha)
        fa.append(float((reals[order[k:]] >= t).mean()))
        det.append(float((fakes >= t).mean()))
    fa = np.array(fa)
    return {"k": k, "alpha": alpha, "draws": draws, "test_reals": len(reals) - k,
            "false_alarm_mean": round(float(fa.mean()), 4), "false_alarm_p95": round(float(np.percentile(fa, 95)), 4),
            "detection_mean": round(float(np.mean(det)), 4), "holds": bool(fa.mean() <= alpha + 0.02)}


def sub_sources(cache: Path, group: str) -> list[str]:
    """The manifest source of every left-out input, in bench/source_eval.py's order."""
    from fak3zer0.data.cache import FaceCropCache
    from source_eval import source_group

    return [e.get("source", "") for e in FaceCropCache(cache).filter() if source_group(e) == group]


def across_sub_sources(p: np.ndarray, y: np.ndarray, sources: list[str], alpha: float) -> list[dict]:
    """Threshold on all reals of one sub-source, false alarms on the other sub-sources' reals."""
    from fak3zer0.evaluate.metrics import false_alarm_threshold

    src = np.array(sources)
    names = sorted({s for s in src[y == 0] if ((src == s) & (y == 0)).sum() >= SUB_SOURCE_MIN_REALS})
    out = []
    for name in names:
        ref, others = (src == name) & (y == 0), (src != name) & (y == 0)
        t = false_alarm_threshold(p[ref], alpha)
        out.append({"reference": name, "k": int(ref.sum()), "alpha": alpha, "threshold": round(t, 4),
                    "other_reals": int(others.sum()), "false_alarm_other_reals": round(float((p[others] >= t).mean()), 4),
                    "detection": round(float((p[y == 1] >= t).mean()), 4)})
    return out


def main(argv: list[str] | None = None) -> int:
    from ensemble_weight_cv import LEFT_OUT_INPUTS, add_direction_arguments, direction_scores, parse_direction_arguments
    from fak3zer0.evaluate.metrics import reals_needed
    from unseen_calibration import direction_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/reals_threshold.json")
    args = parse_direction_arguments(ap, argv)
    result = {"rule": args.rule.read_text() if args.rule else None,
              "directions": [list(d) for d in args.direction], "draws": [], "fixed_0_5": {}, "across_sub_sources": []}
    print(f"{'left out':<13} {'k':>3} {'alpha':>5} {'test reals':>10} {'false alarms':>12} {'p95':>6} "
          f"{'detected':>8} {'holds':>5}")
    for left, mixed, sbi in args.direction:
        model = direction_model(direction_scores(args, left, Path(mixed), Path(sbi)))
        p, y = input_probs(model), model["labels"]
        fixed = {"false_alarm": round(float((p[y == 0] >= 0.5).mean()), 4),
                 "detection": round(float((p[y == 1] >= 0.5).mean()), 4), "reals": int((y == 0).sum()),
                 "fakes": int((y == 1).sum())}
        result["fixed_0_5"][left] = fixed
        print(f"{left:<13} {'':>3} {'0.5':>5} {fixed['reals']:>10} {fixed['false_alarm']:>12.3f} {'':>6} "
              f"{fixed['detection']:>8.3f}   (fixed threshold)")
        for k in KS:
            for alpha in ALPHAS:
                if k < reals_needed(alpha) or k >= fixed["reals"]:
                    continue
                r = {"left_out": left, **simulate(p, y, k, alpha, args.draws)}
                result["draws"].append(r)
                print(f"{left:<13} {k:>3} {alpha:>5.2f} {r['test_reals']:>10} {r['false_alarm_mean']:>12.3f} "
                      f"{r['false_alarm_p95']:>6.3f} {r['detection_mean']:>8.3f} {str(r['holds']):>5}")
        kind, group = LEFT_OUT_INPUTS[left]
        if group != "DFDC":
            sources = sub_sources(getattr(args, kind), group)
            if len(sources) != len(y):
                raise SystemExit(f"{left}: {len(sources)} sources for {len(y)} inputs; caches changed?")
            result["across_sub_sources"] += [{"left_out": left, **r} for r in across_sub_sources(p, y, sources, 0.10)]
    for r in result["across_sub_sources"]:
        print(f"{r['left_out']}: threshold {r['threshold']:.3f} on all {r['k']} reals of {r['reference']}: "
              f"{r['false_alarm_other_reals']:.3f} of {r['other_reals']} other reals called fake "
              f"(bound {r['alpha']}), {r['detection']:.3f} of fakes detected")
    result["gate_holds"] = all(r["holds"] for r in result["draws"])
    print(f"every cell within alpha + 0.02: {result['gate_holds']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

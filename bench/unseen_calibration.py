"""Calibrate for unseen sources: Platt scaling fitted on one left-out source, tested on the other.

    python bench/unseen_calibration.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED_DFDC SBI224_DFDC --direction dfdc MIXED_TF SBI224_TF \\
        [--work runs/weight_cv] [--rule RULE.md]

Each ``--direction LEFT_OUT MIXED SBI`` is a member pair trained without ``LEFT_OUT`` (as in
bench/ensemble_weight_cv.py, whose logit cache in --work it reads or fills). The model of a direction is the
v4 procedure's ensemble: second weight by v4's rule on that direction's val split, logit ``z``, temperature
``T`` fitted there (the baseline, what v4 ships). The candidate adds ``p = sigmoid(a * z / T + b)`` with
``(a, b)`` fitted by log loss on the *other* direction's left-out crops (each crop labelled with its input's
label); a bias-only variant keeps ``a = 1``. An input's probability is the mean of its crops'. Reported per
test direction: input-level log loss, AUC, balanced accuracy and the shares of reals / fakes called fake at
0.5. Prints a table and writes bench/results/unseen_calibration.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def platt(u: np.ndarray, y: np.ndarray, fit_scale: bool = True, iters: int = 50) -> tuple[float, float]:
    """``(a, b)`` minimising the mean log loss of ``sigmoid(a * u + b)`` (Newton's method; ``a = 1`` fixed
    when not ``fit_scale``)."""
    from fak3zer0.evaluate.metrics import sigmoid

    a, b = 1.0, 0.0
    for _ in range(iters):
        p = sigmoid(a * u + b)
        r, w = p - y, np.maximum(p * (1 - p), 1e-12)
        if fit_scale:
            g = np.array([(r * u).mean(), r.mean()])
            h = np.array([[(w * u * u).mean(), (w * u).mean()], [(w * u).mean(), w.mean()]])
            da, db = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        else:
            da, db = 0.0, r.mean() / w.mean()
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-10:
            break
    return float(a), float(b)


def direction_model(scores: dict[str, np.ndarray]) -> dict:
    """The v4 procedure's ensemble on one direction: weight, temperature, and its left-out crop logits / T."""
    from ensemble_weight_cv import sweep, v4_weight
    from fak3zer0.train.recipe import weighted_logits

    rows = sweep(scores)
    w = v4_weight(rows)
    t = next(r["temperature"] for r in rows if r["weight"] == w)
    counts = scores["held_counts"]
    return {"weight": w, "temperature": t, "u": weighted_logits(*scores["held_logits"], w) / t,
            "crop_labels": np.repeat(scores["held_labels"], counts), "counts": counts,
            "labels": scores["held_labels"]}


def input_metrics(model: dict, a: float, b: float) -> dict:
    from fak3zer0.evaluate.metrics import log_loss, roc_auc, sigmoid
    from source_eval import per_input

    p, y = per_input(sigmoid(a * model["u"] + b), model["counts"]), model["labels"]
    real_flagged, fake_flagged = float((p[y == 0] >= 0.5).mean()), float((p[y == 1] >= 0.5).mean())
    return {"a": round(a, 4), "b": round(b, 4), "log_loss": round(log_loss(y, p), 4), "auc": round(roc_auc(y, p), 4),
            "balanced_accuracy": round((1 - real_flagged + fake_flagged) / 2, 4),
            "real_flagged": round(real_flagged, 4), "fake_flagged": round(fake_flagged, 4)}


def main(argv: list[str] | None = None) -> int:
    from ensemble_weight_cv import add_direction_arguments, direction_scores, parse_direction_arguments

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/unseen_calibration.json")
    args = parse_direction_arguments(ap, argv)
    if len({d[0] for d in args.direction}) != len(args.direction):
        ap.error("one --direction per left-out source: each is fitted on the others")
    models = {left: direction_model(direction_scores(args, left, Path(m), Path(s))) for left, m, s in args.direction}
    folds = []
    print(f"{'tested on':<13} {'calibration':<34} {'a':>6} {'b':>7} {'log loss':>8} {'AUC':>6} {'bal acc':>7} "
          f"{'real>=.5':>8} {'fake>=.5':>8}")
    for test, model in models.items():
        fit_on = [k for k in models if k != test]
        u = np.concatenate([models[k]["u"] for k in fit_on])
        y = np.concatenate([models[k]["crop_labels"] for k in fit_on])
        rows = {"val temperature (v4)": input_metrics(model, 1.0, 0.0),
                f"Platt fitted on {'+'.join(fit_on)}": input_metrics(model, *platt(u, y)),
                f"bias fitted on {'+'.join(fit_on)}": input_metrics(model, *platt(u, y, fit_scale=False))}
        for name, r in rows.items():
            print(f"{test:<13} {name:<34} {r['a']:>6.3f} {r['b']:>7.3f} {r['log_loss']:>8.3f} {r['auc']:>6.3f} "
                  f"{r['balanced_accuracy']:>7.3f} {r['real_flagged']:>8.3f} {r['fake_flagged']:>8.3f}")
        folds.append({"tested_on": test, "fitted_on": fit_on, "weight": model["weight"],
                      "temperature": model["temperature"], "rows": rows})
    u = np.concatenate([m["u"] for m in models.values()])
    y = np.concatenate([m["crop_labels"] for m in models.values()])
    pooled = {"platt": platt(u, y), "bias": platt(u, y, fit_scale=False)}
    print(f"fitted on every direction: Platt a={pooled['platt'][0]:.3f} b={pooled['platt'][1]:.3f}; "
          f"bias b={pooled['bias'][1]:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None,
                                    "directions": [list(d) for d in args.direction], "folds": folds,
                                    "pooled_fit": pooled}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

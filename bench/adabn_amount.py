"""How much unlabeled footage BatchNorm re-estimation (bench/adabn.py) needs, on one member pair.

    python bench/adabn_amount.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED SBI [--work WEIGHT_CV_CACHE] [--rule RULE.md]

The pair's BatchNorm statistics are re-estimated on the crops of k randomly drawn left-out inputs (labels
unused; --draws draws per k), then every left-out input is scored with the v4 procedure's weight and
temperature unchanged; "own" adapts on each input's own crops before scoring it. Prints a table and
writes bench/results/adabn_amount.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

KS = (5, 10, 20, 40)


def summary(y: np.ndarray, probs: list[np.ndarray]) -> dict:
    from fak3zer0.evaluate.metrics import roc_auc

    aucs = [roc_auc(y, p) for p in probs]
    return {"auc_mean": round(float(np.mean(aucs)), 4), "auc_min": round(min(aucs), 4),
            "auc_max": round(max(aucs), 4), "aucs": [round(a, 4) for a in aucs],
            "real_flagged": round(float(np.mean([(p[y == 0] >= 0.5).mean() for p in probs])), 4)}


def main(argv: list[str] | None = None) -> int:
    from adabn import adapt_batchnorm, left_out_pair
    from ensemble_weight_cv import add_direction_arguments, input_probs, member_logits, parse_direction_arguments

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/adabn_amount.json")
    args = parse_direction_arguments(ap, argv)
    if len(args.direction) != 1:
        ap.error("one --direction (one member pair)")
    left, mixed, sbi = args.direction[0]
    pair = left_out_pair(args, left, Path(mixed), Path(sbi))
    model, weight, temperature, scores = pair["model"], pair["weight"], pair["temperature"], pair["scores"]
    inputs, y = pair["inputs"], pair["labels"]
    counts, crops = np.array([len(c) for c in inputs]), np.concatenate(inputs)
    score = lambda m: input_probs(member_logits(m, crops), weight, temperature, counts)  # noqa: E731
    result = {"rule": args.rule.read_text() if args.rule else None, "direction": args.direction[0],
              "weight": weight, "temperature": temperature,
              "unadapted": summary(y, [input_probs(scores["held_logits"], weight, temperature, counts)]), "k": {}}
    print(f"{'adapted on':<16} {'AUC mean':>8} {'min':>6} {'max':>6} {'reals>=.5':>9}")
    print(f"{'nothing':<16} {result['unadapted']['auc_mean']:>8.3f} {'':>6} {'':>6} "
          f"{result['unadapted']['real_flagged']:>9.2f}", flush=True)
    for k in KS:
        probs = []
        for seed in range(args.draws):
            pick = np.sort(np.random.default_rng(seed).choice(len(inputs), k, replace=False))
            probs.append(score(adapt_batchnorm(model, np.concatenate([inputs[i] for i in pick]))))
        r = result["k"][str(k)] = summary(y, probs)
        print(f"{f'{k} inputs':<16} {r['auc_mean']:>8.3f} {r['auc_min']:>6.3f} {r['auc_max']:>6.3f} "
              f"{r['real_flagged']:>9.2f}", flush=True)
    own = np.array([input_probs(member_logits(adapt_batchnorm(model, c), c), weight, temperature, [len(c)])[0]
                    for c in inputs])
    r = result["own clip"] = summary(y, [own])
    print(f"{'its own crops':<16} {r['auc_mean']:>8.3f} {'':>6} {'':>6} {r['real_flagged']:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

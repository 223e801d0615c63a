"""Re-estimate BatchNorm statistics on the user's genuine files, then set the false-alarm threshold on them.

    python bench/adapt_threshold.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED_DFDC SBI224_DFDC --direction dfdc MIXED_TF SBI224_TF \\
        [--work runs/weight_cv] [--draws 8] [--rule RULE.md]

What ``fak3zer0 threshold`` would do with adaptation, simulated on the left-out source of each direction
(the v4 procedure's member pair trained without it, weight and temperature unchanged): draw ``k`` real
inputs, re-estimate the pair's BatchNorm statistics on their crops (bench/adabn.py), set the threshold with
:func:`fak3zer0.evaluate.metrics.false_alarm_threshold` on the adapted scores of those same ``k`` reals,
and score the source's other reals (false alarms) and its fakes (caught) with the adapted pair. The
baseline is the unadapted pair with the threshold set on the same ``k`` reals. The DFDC direction scores a
fixed random subset of its crops (every draw re-scores every input). Prints a table and writes
bench/results/adapt_threshold.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

KS = (10, 20)
ALPHAS = (0.05, 0.10, 0.20)
#: the DFDC direction's scored subset: reals the k are drawn from, and fakes
DFDC_SUBSET = {"reals": 1100, "fakes": 1000}


def subset(y: np.ndarray, left: str) -> np.ndarray:
    """The left-out inputs this bench scores: all of them, or DFDC's fixed random subset."""
    if left != "dfdc":
        return np.arange(len(y))
    rng = np.random.default_rng(0)
    reals = rng.choice(np.flatnonzero(y == 0), DFDC_SUBSET["reals"], replace=False)
    fakes = rng.choice(np.flatnonzero(y == 1), DFDC_SUBSET["fakes"], replace=False)
    return np.sort(np.concatenate([reals, fakes]))


def rates(p: np.ndarray, y: np.ndarray, ref: np.ndarray, alpha: float) -> tuple[float, float]:
    """False-alarm rate on the reals outside ``ref`` and share of fakes caught, threshold set on ``ref``."""
    from fak3zer0.evaluate.metrics import false_alarm_threshold

    t = false_alarm_threshold(p[ref], alpha)
    others = np.setdiff1d(np.flatnonzero(y == 0), ref)
    return float((p[others] >= t).mean()), float((p[y == 1] >= t).mean())


def draw_scores(model, inputs: list[np.ndarray], y: np.ndarray, k: int, seed: int, weight: float,
                temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """One draw: the k reals, and every scored input's probability after adapting on their crops."""
    from adabn import adapt_batchnorm
    from ensemble_weight_cv import input_probs, member_logits

    ref = np.sort(np.random.default_rng(seed).choice(np.flatnonzero(y == 0), k, replace=False))
    adapted = adapt_batchnorm(model, np.concatenate([inputs[i] for i in ref]))
    counts = np.array([len(c) for c in inputs])
    probs = input_probs(member_logits(adapted, np.concatenate(inputs)), weight, temperature, counts)
    return ref, probs


def summarise(cells: list[dict], left: str, k: int, alpha: float, y: np.ndarray) -> dict:
    from fak3zer0.evaluate.metrics import roc_auc

    out = {"left_out": left, "k": k, "alpha": alpha, "draws": len(cells)}
    for name in ("adapted", "baseline"):
        fa = np.array([c[name][0] for c in cells])
        out[name] = {"false_alarm_mean": round(float(fa.mean()), 4), "false_alarm_max": round(float(fa.max()), 4),
                     "caught_mean": round(float(np.mean([c[name][1] for c in cells])), 4),
                     "holds": bool(fa.mean() <= alpha + 0.02)}
    aucs = [(roc_auc(np.delete(y, c["ref"]), np.delete(c["p_adapted"], c["ref"])),
             roc_auc(np.delete(y, c["ref"]), np.delete(c["p_base"], c["ref"]))) for c in cells]
    out["auc_adapted"], out["auc_baseline"] = (round(float(np.mean(a)), 4) for a in zip(*aucs))
    return out


def run_direction(args, left: str, mixed: Path, sbi: Path) -> list[dict]:
    from adabn import left_out_pair
    from ensemble_weight_cv import input_probs
    from fak3zer0.evaluate.metrics import reals_needed

    pair = left_out_pair(args, left, mixed, sbi)
    model, weight, temperature, scores = pair["model"], pair["weight"], pair["temperature"], pair["scores"]
    inputs, y = pair["inputs"], pair["labels"]
    base = input_probs(scores["held_logits"], weight, temperature, scores["held_counts"])
    keep = subset(y, left)
    inputs, y, base = [inputs[i] for i in keep], y[keep], base[keep]
    rows = []
    for k in KS:
        draws = []
        for seed in range(args.draws):
            ref, p = draw_scores(model, inputs, y, k, seed, weight, temperature)
            draws.append({"ref": ref, "p_adapted": p, "p_base": base})
            print(f"  {left} k={k} draw {seed}: done", flush=True)
        for alpha in ALPHAS:
            if k < reals_needed(alpha):
                continue
            cells = [{**d, "adapted": rates(d["p_adapted"], y, d["ref"], alpha),
                      "baseline": rates(d["p_base"], y, d["ref"], alpha)} for d in draws]
            rows.append({**summarise(cells, left, k, alpha, y), "weight": weight,
                         "temperature": round(temperature, 4), "reals": int((y == 0).sum()),
                         "fakes": int((y == 1).sum())})
            r = rows[-1]
            print(f"{left:<13} {k:>3} {alpha:>5.2f} {r['adapted']['false_alarm_mean']:>8.3f} "
                  f"{r['baseline']['false_alarm_mean']:>8.3f} {r['adapted']['caught_mean']:>8.3f} "
                  f"{r['baseline']['caught_mean']:>8.3f} {r['auc_adapted']:>7.3f} {r['auc_baseline']:>7.3f}",
                  flush=True)
    return rows


def gate(rows: list[dict]) -> dict:
    valid = all(r["adapted"]["holds"] for r in rows)
    gains = {r["left_out"]: round(r["adapted"]["caught_mean"] - r["baseline"]["caught_mean"], 4)
             for r in rows if r["k"] == 20 and r["alpha"] == 0.10}
    return {"valid": valid, "caught_gain_k20_a10": gains,
            "adopt": valid and all(g >= 0.03 for g in gains.values())}


def main(argv: list[str] | None = None) -> int:
    from ensemble_weight_cv import add_direction_arguments, parse_direction_arguments

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/adapt_threshold.json")
    args = parse_direction_arguments(ap, argv)
    print(f"{'left out':<13} {'k':>3} {'alpha':>5} {'FA adapt':>8} {'FA base':>8} {'caught a':>8} "
          f"{'caught b':>8} {'AUC a':>7} {'AUC b':>7}")
    rows = [r for left, mixed, sbi in args.direction for r in run_direction(args, left, Path(mixed), Path(sbi))]
    result = {"rule": args.rule.read_text() if args.rule else None,
              "directions": [list(d) for d in args.direction], "cells": rows, **gate(rows)}
    print(f"bound held in every cell: {result['valid']}; fakes caught gain at k=20, alpha=0.10: "
          f"{result['caught_gain_k20_a10']} -> adopt: {result['adopt']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

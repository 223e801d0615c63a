"""Re-estimate BatchNorm statistics on a source the members never saw (AdaBN: no labels, no training).

    python bench/adabn.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face MIXED SBI_S0 --direction talking-face MIXED SBI_S1 --direction dfdc MIXED SBI \\
        [--work WEIGHT_CV_CACHE] [--rule RULE.md]

For each member pair (bench/ensemble_weight_cv.py's pairs and logit cache), every BatchNorm layer of both
members is reset and re-estimated as the plain average over batches of the left-out source's crops,
the rest of the network in eval mode: (A) on every scored crop of the source, labels unused; (B) on the
crops of a random half of its real inputs only, scored on the other reals and every fake. The inputs are
then scored with the v4 procedure's weight and temperature unchanged (input = mean of its crops'
probabilities) and compared with the unadapted pair on the same inputs. Prints a table and writes
bench/results/adabn.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

BATCH = 32


def adapt_batchnorm(model, crops: np.ndarray, batch: int = BATCH, seed: int = 0):
    """A copy of ``model`` (a member pair or one model) whose BatchNorm running statistics are the average
    over shuffled batches of ``crops`` (every other layer in eval mode, so no dropout or drop-path)."""
    import torch

    from fak3zer0.models.inputs import crops_to_tensor

    model = copy.deepcopy(model).eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches seen
        bn.train()
    order = np.random.default_rng(seed).permutation(len(crops))
    forward = getattr(model, "member_logits", model)
    with torch.no_grad():
        for i in range(0, len(order), batch):
            forward(crops_to_tensor(crops[np.sort(order[i:i + batch])], model.input_spec))
    return model.eval()


def compare(y: np.ndarray, adapted: np.ndarray, base: np.ndarray) -> dict:
    from fak3zer0.evaluate.metrics import paired_auc_difference, roc_auc

    def flagged(p):
        return {"real_flagged": round(float((p[y == 0] >= 0.5).mean()), 4),
                "fake_flagged": round(float((p[y == 1] >= 0.5).mean()), 4)}

    return {"inputs": int(len(y)), "auc": round(roc_auc(y, adapted), 4), "base_auc": round(roc_auc(y, base), 4),
            "vs_base": paired_auc_difference(y, adapted, base), "adapted": flagged(adapted), "base": flagged(base)}


def left_out_pair(args, left: str, mixed: Path, sbi: Path) -> dict:
    """A direction's member pair (``model``), the v4 procedure's ``weight`` and ``temperature`` on it, its
    cached ``scores`` and the left-out ``inputs`` (crops per input) with their ``labels``: what every
    AdaBN bench starts from. Refuses when the crop caches no longer match the logit cache."""
    from ensemble_weight_cv import LEFT_OUT_INPUTS, direction_scores, left_out_inputs, pair_model
    from unseen_calibration import direction_model

    scores = direction_scores(args, left, mixed, sbi)
    v4 = direction_model(scores)
    model = pair_model(mixed, sbi)
    kind, group = LEFT_OUT_INPUTS[left]
    inputs, y = left_out_inputs(getattr(args, kind), group, model.input_spec.size, args.max_crops)
    counts = np.array([len(c) for c in inputs])
    if not np.array_equal(counts, scores["held_counts"]) or not np.array_equal(y, scores["held_labels"]):
        raise SystemExit(f"{left}: the caches no longer match the logit cache; rebuild it")
    return {"model": model, "weight": v4["weight"], "temperature": v4["temperature"], "scores": scores,
            "inputs": inputs, "labels": y}


def run_pair(args, left: str, mixed: Path, sbi: Path) -> dict[str, dict]:
    from ensemble_weight_cv import input_probs, member_logits

    pair = left_out_pair(args, left, mixed, sbi)
    model, weight, temperature, scores = pair["model"], pair["weight"], pair["temperature"], pair["scores"]
    inputs, y = pair["inputs"], pair["labels"]
    counts = np.array([len(c) for c in inputs])
    crops = np.concatenate(inputs)
    base = input_probs(scores["held_logits"], weight, temperature, counts)
    out = {}
    adapted = adapt_batchnorm(model, crops)
    out["A: all left-out crops"] = compare(y, input_probs(member_logits(adapted, crops), weight, temperature, counts),
                                           base)
    reals = np.flatnonzero(y == 0)
    ref = np.sort(np.random.default_rng(0).permutation(reals)[: len(reals) // 2])
    keep = np.setdiff1d(np.arange(len(y)), ref)
    adapted = adapt_batchnorm(model, np.concatenate([inputs[i] for i in ref]))
    test_crops = np.concatenate([inputs[i] for i in keep])
    out["B: half the reals"] = compare(
        y[keep], input_probs(member_logits(adapted, test_crops), weight, temperature, counts[keep]), base[keep])
    for r in out.values():
        r.update(weight=weight, temperature=round(temperature, 4))
    return out


def main(argv: list[str] | None = None) -> int:
    from ensemble_weight_cv import add_direction_arguments, parse_direction_arguments

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_direction_arguments(ap)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/adabn.json")
    args = parse_direction_arguments(ap, argv)
    pairs: dict[str, list[dict]] = defaultdict(list)
    print(f"{'left out':<13} {'adapted on':<22} {'inputs':>6} {'AUC':>6} {'before':>6} {'gain [95 %]':>24} "
          f"{'reals>=.5':>13} {'fakes>=.5':>13}")
    for left, mixed, sbi in args.direction:
        rows = run_pair(args, left, Path(mixed), Path(sbi))
        pairs[left].append(rows)
        for name, r in rows.items():
            d = r["vs_base"]
            print(f"{left:<13} {name:<22} {r['inputs']:>6} {r['auc']:>6.3f} {r['base_auc']:>6.3f} "
                  f"{d['difference']:>+7.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] "
                  f"{r['adapted']['real_flagged']:>6.2f}/{r['base']['real_flagged']:.2f} "
                  f"{r['adapted']['fake_flagged']:>6.2f}/{r['base']['fake_flagged']:.2f}", flush=True)
    gains = {left: float(np.mean([p["A: all left-out crops"]["vs_base"]["difference"] for p in ps]))
             for left, ps in pairs.items()}
    adopt = all(g >= 0.02 for g in gains.values())
    print("gate (A), mean gain per direction >= +0.02: "
          + ", ".join(f"{k} {v:+.3f}" for k, v in gains.items()) + f" -> adopt: {adopt}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None,
                                    "directions": [list(d) for d in args.direction], "pairs": pairs,
                                    "mean_gain_A": gains, "adopt": adopt}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

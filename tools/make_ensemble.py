"""Join trained frame models into one logit-averaging ensemble checkpoint and calibrate it.

    python tools/make_ensemble.py A/model.pt B/model.pt --cache IMAGES --cache VIDEOS --out runs/ens/model.pt

The ensemble's logit is the mean of the members' raw logits (``--scaling temperature``: each
divided first by the temperature in its checkpoint; ``--weights``: a weighted mean; see
``fak3zer0.models.ensemble``). ``--keep-first-within D`` gives as much weight to the second of two
members as the validation split allows while its AUC stays within D of the first member's alone. The ensemble's own temperature is fitted on the validation split
of the caches, the same grouped split tools/train_default.py trains with (seed, --val, --test), so
give it the caches and source filters the members were trained with. The checkpoint loads like
any other (``fak3zer0 detect --model runs/ens/model.pt``) and exports to ONNX as one graph.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fak3zer0.evaluate.metrics import fit_temperature, roc_auc
from fak3zer0.models.checkpoint import save_checkpoint
from fak3zer0.models.ensemble import ensemble_from_checkpoints
from fak3zer0.train.recipe import (SECOND_WEIGHTS, largest_within, load_crops, predict, recipe_split, split_metrics,
                                   weighted_logits)


def member_logits(model, crops: np.ndarray) -> np.ndarray:
    """Each member's raw logits, ``(members, crops)``: scored once, then combined for any weights."""
    return predict(model, crops, forward=model.member_logits)


def combine(model, logits: np.ndarray) -> np.ndarray:
    """The ensemble's logits from its members' (``model.combine``, the same sum ``model(x)`` takes)."""
    return model.combine(torch.from_numpy(logits)).numpy()


def choose_second_weight(model, logits: np.ndarray, labels: np.ndarray, within: float,
                         grid: tuple[float, ...] = SECOND_WEIGHTS) -> dict:
    """The largest second-member weight on ``grid`` whose AUC on these (validation) crops' member logits is
    within ``within`` of the first member's alone, with the AUC of every weight tried."""
    first, second = (lg / t for lg, t in zip(logits, model.temperatures))
    aucs = {float(w): roc_auc(labels, weighted_logits(first, second, w)) for w in grid}
    print("second member's weight -> val AUC: " + ", ".join(f"{w:.2f}: {a:.4f}" for w, a in aucs.items()))
    return {"weight": largest_within(aucs, within), "within": within, "val_auc_by_weight": aucs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", type=Path, nargs="+", help="member checkpoints (frame models, same normalisation; crop sizes may differ)")
    ap.add_argument("--cache", type=Path, action="append", required=True, help="cache folder (repeatable)")
    ap.add_argument("--include-source", default=None, help="regex: only entries whose source matches")
    ap.add_argument("--exclude-source", default=None, help="regex: drop entries whose source matches")
    ap.add_argument("--max-crops", type=int, default=32, help="crops per video (images have one)")
    ap.add_argument("--val", type=float, default=0.1)
    ap.add_argument("--test", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scaling", choices=("raw", "temperature"), default="raw",
                    help="raw: average the members' logits as they are; temperature: divide each by the temperature "
                         "in its checkpoint first (a member calibrated on data whose fakes it never learned gets a "
                         "huge temperature and is silenced)")
    ap.add_argument("--weights", type=float, nargs="+", default=None, metavar="W",
                    help="one weight per member (normalised to sum to 1; default: equal)")
    ap.add_argument("--keep-first-within", type=float, default=None, metavar="D",
                    help="two members: choose the second member's weight on the validation split alone, the "
                         "largest of 0, 0.05, ..., 0.5 whose val AUC is within D of the first member's alone")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="where to write the ensemble checkpoint")
    args = ap.parse_args(argv)
    if len(args.members) < 2:
        ap.error("give at least two member checkpoints")
    if args.weights is not None and len(args.weights) != len(args.members):
        ap.error(f"--weights needs one weight per member ({len(args.members)})")
    if args.keep_first_within is not None and (len(args.members) != 2 or args.weights is not None):
        ap.error("--keep-first-within chooses the weights of exactly two members (and replaces --weights)")
    torch.set_num_threads(args.threads)
    model = ensemble_from_checkpoints(args.members, args.scaling, args.weights)
    crops, _, labels, groups, _ = load_crops(args.cache, model.input_spec.size, args.include_source,
                                             args.exclude_source, args.max_crops)
    split = np.array([recipe_split(g, args.seed, args.val, args.test) for g in groups])
    va, te = np.where(split == "val")[0], np.where(split == "test")[0]
    if not len(va) or len(np.unique(labels[va])) < 2:
        raise SystemExit("the validation split needs real and fake crops to calibrate on; check --cache/--val")
    choice, members_va = None, member_logits(model, crops[va])
    if args.keep_first_within is not None:
        choice = choose_second_weight(model, members_va, labels[va], args.keep_first_within)
        model = ensemble_from_checkpoints(args.members, args.scaling, [1 - choice["weight"], choice["weight"]])
    val_logits = combine(model, members_va)
    temp = fit_temperature(val_logits, labels[va])
    metrics: dict[str, object] = {"temperature": temp, "n_val": int(len(va)), "n_test": int(len(te)),
                                  "weights": model.weights, **split_metrics(labels[va], val_logits, temp, "val")}
    if choice is not None:
        metrics["weight_choice"] = choice
    if len(te):
        metrics.update(split_metrics(labels[te], combine(model, member_logits(model, crops[te])), temp, "test"))
    print(json.dumps(metrics), flush=True)
    save_checkpoint(args.out, model, metrics=metrics, temperature=temp, aggregation="mean",
                    meta={"recipe": "tools/make_ensemble.py",
                          "members": [{"path": str(p), "version": m["version"]}
                                      for p, m in zip(args.members, model.model_config["members"])],
                          "args": {k: str(v) for k, v in vars(args).items()},
                          "description": f"weighted mean of {len(args.members)} members' logits"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

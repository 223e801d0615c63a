"""Per-source validation/test metrics of checkpoints on the grouped split tools/train_default.py uses.

    python bench/source_eval.py --model fak3zer0-default --model runs/x/model.pt \\
        --cache DEV_IMAGE_CACHE --cache DEV_VIDEO_CACHE [--split val --split test]

Every cache entry goes to train/val/test by the same SHA-1 hash of its leakage group (seed 0,
10 % val, 10 % test) that tools/train_default.py trains with, so "val" and "test" here are never
trained on by a model from that script (whatever caches it was given). Scores are per input: one
image, or one video (the mean of its crops' probabilities, at most --max-crops crops evenly spread,
the model's temperature applied). Crops are read at each model's own input size (``--size`` for all of them), the
same entries in the same order, so paired differences between models of different sizes are fair.
Sources are grouped as DFDC (source name starts with "DFDC") and
talking-face (everything else), per cache kind (images / videos). Prints a table and writes
bench/results/source_eval.json (or --out); used to choose the shipped model on val before looking at
test, and (--split all) to score a source left out of training on every one of its inputs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def source_group(entry: dict) -> str:
    """A cache entry's source group: "DFDC" (source name starts with DFDC) or "talking-face" (the rest)."""
    return "DFDC" if entry.get("source", "").startswith("DFDC") else "talking-face"


def load_inputs(caches: list[Path], size: int, max_crops: int, splits: list[str], val: float = 0.1,
                test: float = 0.1):
    """[(cache kind, source group, split, label, crops uint8 (K, S, S, 3))] for every usable entry in
    ``splits`` ("all": every entry), split with ``val`` / ``test`` shares of the groups (train_default's
    ``--val`` / ``--test``)."""
    from fak3zer0.data.cache import FaceCropCache
    from fak3zer0.train.recipe import recipe_split

    out = []
    for path in caches:
        cache = FaceCropCache(path)
        for e in cache.filter():
            group = source_group(e)
            split = recipe_split(e["group"], 0, val, test)
            if "all" not in splits and split not in splits:
                continue
            out.append((e.get("kind", "video") + "s", group, split, int(e["label"]),
                        cache.crops(e, size, max_crops)))
    return out


def per_input(values: np.ndarray, counts) -> np.ndarray:
    """Per-crop values -> one mean per input, each input's crops a consecutive run of ``counts`` of them."""
    counts = np.asarray(counts)
    return np.add.reduceat(values, np.concatenate([[0], np.cumsum(counts)[:-1]])) / counts


def score(model_name: str, caches: list[Path], size: int | None, max_crops: int, splits: list[str],
          read: dict[int, list]) -> np.ndarray:
    """One probability per cache entry: crops read at the model's own input size (or ``size`` for
    every model, then resized to the model's); ``read`` keeps each size's crops for the next model."""
    import torch

    from fak3zer0.models.hub import resolve_model
    from fak3zer0.train.recipe import predict

    loaded = resolve_model(model_name)
    model = loaded.model.eval()
    want = model.input_spec.size
    if (size or want) not in read:
        read[size or want] = load_inputs(caches, size or want, max_crops, splits)
    out = []
    with torch.inference_mode():
        for *_, crops in read[size or want]:
            if crops.shape[1] != want:  # --size given: e.g. Meso4 at 256 px from 160 px crops
                crops = np.stack([cv2.resize(c, (want, want), interpolation=cv2.INTER_LINEAR) for c in crops])
            logits = predict(model, crops)
            out.append(float(np.mean(1.0 / (1.0 + np.exp(-logits / loaded.temperature)))))
    return np.array(out)


def label(model: str) -> str:
    """Short display name: a run's folder for ``.../RUN/model.pt``, else the file or registry name."""
    path = Path(model)
    return path.parent.name if path.name == "model.pt" and path.parent.name else path.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--cache", type=Path, action="append", required=True)
    ap.add_argument("--split", action="append", default=None,
                    help="splits to report (default: val, test); 'all' pools every entry (for a source the "
                         "models never trained on)")
    ap.add_argument("--size", type=int, default=None,
                    help="read every model's crops at this size (then resized to the model's); default: each "
                         "model's own input size, so models of different sizes score the same entries fairly")
    ap.add_argument("--max-crops", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paired-against", metavar="MODEL", default=None,
                    help="one of the --model values: also report every other model's AUC minus this one's on the "
                         "same inputs, with a 95 %% paired-bootstrap interval (2,000 resamples of the inputs)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/source_eval.json"))
    args = ap.parse_args(argv)
    if args.paired_against is not None and args.paired_against not in args.model:
        ap.error(f"--paired-against {args.paired_against} is not one of the --model values")

    import torch

    from fak3zer0.evaluate.metrics import log_loss, paired_auc_difference, roc_auc

    torch.set_num_threads(args.threads)
    splits = args.split or ["val", "test"]
    read: dict[int, list] = {}
    scores = {name: score(name, args.cache, args.size, args.max_crops, splits, read) for name in args.model}
    inputs = next(iter(read.values()))
    keys = sorted({(s, x[0], x[1]) for x in inputs for s in splits if s in ("all", x[2])},
                  key=lambda k: (splits.index(k[0]), k[1], k[2]))
    rows = []
    width = max(28, *(len(label(n)) for n in args.model))
    print(f"{'model':<{width}} {'split':<5} {'set':<22} {'n':>5} {'fake':>5} {'AUC':>6} {'log loss':>8} {'acc':>6} "
          f"{'real>=.5':>8} {'fake>=.5':>8}")
    labels = np.array([x[3] for x in inputs])
    masks = {k: np.array([k[0] in ("all", x[2]) and (x[0], x[1]) == k[1:] for x in inputs]) for k in keys}
    for name, p in scores.items():
        for (split, kind, group), m in masks.items():
            y = labels[m]
            if len(set(y)) < 2:
                continue
            r = {"model": name, "split": split, "set": f"{group} {kind}", "n": int(m.sum()), "fake": int(y.sum()),
                 "auc": round(roc_auc(y, p[m]), 4), "log_loss": round(log_loss(y, p[m]), 4),
                 "accuracy": round(float(((p[m] >= 0.5) == y).mean()), 4),
                 # at the 0.5 threshold: share of real inputs called fake, share of fakes caught
                 "real_flagged": round(float((p[m][y == 0] >= 0.5).mean()), 4),
                 "fake_flagged": round(float((p[m][y == 1] >= 0.5).mean()), 4)}
            rows.append(r)
            print(f"{label(name):<{width}} {split:<5} {r['set']:<22} {r['n']:>5} {r['fake']:>5} {r['auc']:>6.3f} "
                  f"{r['log_loss']:>8.3f} {r['accuracy']:>6.3f} {r['real_flagged']:>8.3f} {r['fake_flagged']:>8.3f}")
    paired = []
    if args.paired_against is not None:
        ref = scores[args.paired_against]
        print(f"\nAUC minus {label(args.paired_against)}'s on the same inputs (95 % paired bootstrap):")
        for name in (n for n in scores if n != args.paired_against):
            for (split, kind, group), m in masks.items():
                if len(set(labels[m])) < 2:
                    continue
                d = paired_auc_difference(labels[m], scores[name][m], ref[m])
                paired.append({"model": name, "against": args.paired_against, "split": split,
                               "set": f"{group} {kind}", **d})
                print(f"{label(name):<{width}} {split:<5} {group + ' ' + kind:<22} {d['difference']:+.3f} "
                      f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]  share <= 0: {d['share_le_0']:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"caches": [str(c) for c in args.cache], "rows": rows, **({"paired": paired} if paired else {})}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

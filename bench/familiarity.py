"""Can a model tell footage unlike its training data? Leave-one-source-out test of a familiarity distance.

    python bench/familiarity.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --model talking-face=runs/loso_ens/dfdc+sbi-face+lower/model.pt \\
        --model DFDC=runs/loso_dfdc/tf+sbi-face+lower/model.pt [--rule RULE.md]

For each ``--model LEFT_OUT=CKPT`` (a frame model trained without LEFT_OUT, with bench/frozen_probe.py's
selection of the training source): the pooled head features of its training-split crops define a
Gaussian in their top-64 principal components; a crop's familiarity distance is its Mahalanobis distance
there, an input's the mean over its crops (at most 16 a video). The threshold is the 95th percentile of
the training source's val-split inputs. Reported per direction: the share of the left-out source's inputs
beyond it, the same for the training source's held-out test inputs (when the direction keeps a test split),
the distance's AUROC for left-out vs held-out inputs, and among left-out reals the share the model calls
fake at 0.5 when familiar vs unfamiliar. Prints a table and writes bench/results/familiarity.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

COMPONENTS = 64
PERCENTILE = 95.0
MAX_CROPS = 16


class Familiarity:
    """Mahalanobis distance in the top principal components of reference features."""

    def __init__(self, reference: np.ndarray, components: int = COMPONENTS) -> None:
        self.mean = reference.mean(0)
        _, s, vt = np.linalg.svd(reference - self.mean, full_matrices=False)
        var = s[:components] ** 2 / max(len(reference) - 1, 1)
        self.basis = vt[:components]
        self.scale = np.sqrt(np.maximum(var, var[0] * 1e-6))

    def distance(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) @ self.basis.T / self.scale
        return np.sqrt((z ** 2).sum(1))


def features_and_logits(model, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled head features ``(N, C)`` and fake logits ``(N,)`` in one pass."""
    from fak3zer0.train.recipe import predict

    def forward(x: torch.Tensor) -> torch.Tensor:
        pooled = model.pooled_features(x)
        return torch.cat([pooled, model.classifier(pooled)], dim=1).T

    out = predict(model, crops, forward=forward).T
    return out[:, :-1], out[:, -1]


def direction(left_out: str, ckpt: str, images: Path, videos: Path) -> dict:
    from fak3zer0.evaluate.metrics import roc_auc
    from fak3zer0.models.hub import resolve_model
    from fak3zer0.train.recipe import load_crops, recipe_split
    from frozen_probe import DIRECTIONS, video_probs
    from source_eval import load_inputs, per_input

    loaded = resolve_model(ckpt)
    model, size = loaded.model.eval(), loaded.model.input_spec.size
    d = DIRECTIONS[left_out]
    crops, _, _, groups, _ = load_crops([images, videos], size, d["include"], d["exclude"], d["max_crops"])
    split = np.array([recipe_split(g, 0, d["val"], d["test"]) for g in groups])
    fam = Familiarity(features_and_logits(model, crops[split == "train"])[0])
    del crops
    trained_on = "DFDC" if left_out == "talking-face" else "talking-face"
    held = [x for x in load_inputs([images, videos], size, MAX_CROPS, ["val", "test"], d["val"], d["test"])
            if x[1] == trained_on]
    sets = {"val": [x for x in held if x[2] == "val"], "held-out test": [x for x in held if x[2] == "test"],
            "left-out source": [x for x in load_inputs([images, videos], size, MAX_CROPS, ["all"]) if x[1] == left_out]}
    if d["test"] == 0:
        sets.pop("held-out test")
    dist, prob = {}, {}
    for name, inputs in sets.items():
        feats, logits = features_and_logits(model, np.concatenate([x[4] for x in inputs]))
        sizes = [len(x[4]) for x in inputs]
        dist[name] = per_input(fam.distance(feats), sizes)
        prob[name] = video_probs(logits, sizes, loaded.temperature)
    threshold = float(np.percentile(dist["val"], PERCENTILE))
    out = {"left_out": left_out, "model": ckpt, "input_size": size, "threshold": round(threshold, 3), "sets": {}}
    for name, inputs in sets.items():
        y = np.array([x[3] for x in inputs])
        far = dist[name] > threshold
        real = y == 0
        row = {"n": len(inputs), "beyond_threshold": round(float(far.mean()), 4),
               "median_distance": round(float(np.median(dist[name])), 3)}
        if name == "left-out source":
            for tag, m in (("familiar", real & ~far), ("unfamiliar", real & far)):
                row[f"reals_{tag}"] = int(m.sum())
                row[f"reals_{tag}_called_fake"] = round(float((prob[name][m] >= 0.5).mean()), 4) if m.any() else None
            row["model_auc_familiar"] = roc_auc(y[~far], prob[name][~far]) if len(set(y[~far])) == 2 else None
            row["model_auc_unfamiliar"] = roc_auc(y[far], prob[name][far]) if len(set(y[far])) == 2 else None
        out["sets"][name] = row
    # the training source's held-out inputs: its test split, or its val split where the direction keeps no test
    seen = dist.get("held-out test", dist["val"])
    out["distance_auroc_left_out_vs_held_out"] = round(roc_auc(
        np.r_[np.zeros(len(seen)), np.ones(len(dist["left-out source"]))], np.r_[seen, dist["left-out source"]]), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--videos", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, metavar="LEFT_OUT=CKPT",
                    help="LEFT_OUT: talking-face or DFDC; CKPT: a frame model trained without it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/familiarity.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [direction(*m.split("=", 1), args.images, args.videos) for m in args.model]
    print(f"{'left out':<13} {'set':<16} {'n':>6} {'beyond':>7} {'median d':>9}")
    for r in results:
        for name, row in r["sets"].items():
            print(f"{r['left_out']:<13} {name:<16} {row['n']:>6} {row['beyond_threshold']:>7.3f} "
                  f"{row['median_distance']:>9.2f}")
        lo = r["sets"]["left-out source"]
        print(f"  threshold {r['threshold']}, distance AUROC left-out vs held-out "
              f"{r['distance_auroc_left_out_vs_held_out']}; left-out reals called fake: familiar "
              f"{lo['reals_familiar_called_fake']} (n {lo['reals_familiar']}), unfamiliar "
              f"{lo['reals_unfamiliar_called_fake']} (n {lo['reals_unfamiliar']}); model AUC familiar "
              f"{lo['model_auc_familiar']}, unfamiliar {lo['model_auc_unfamiliar']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None, "components": COMPONENTS,
                                    "percentile": PERCENTILE, "directions": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

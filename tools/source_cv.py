"""Source-level cross-validation of the mixed-source recipe on the talking-face material.

    python tools/source_cv.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE [--base runs/default-v1/model.pt]
        [--folds 3] [--recipe mixed|sbi-only|ensemble] [--sbi-lower Q]

BASE is the DFDC-only model (the first shipped weights, 2026-11-25: ``python tools/train_default.py
--cache DEV_IMAGE_CACHE --size 160 --epochs 3 --out runs/default-v1``).

The question it answers: does adding talking-face clips (and self-blended fakes) to training help
on talking-face material from *sources the model has never seen*? The talking-face sources (every
source not starting with "DFDC"; each repository is one source) are dealt into --folds folds,
real and fake sources separately so each fold has both. For each fold the recipe (``RECIPES``: "mixed" =
``tools/train_default.py --init BASE --sbi 0.3 --sbi-lower Q --epochs 1 --lr 1e-4``, "sbi-only" =
``--real-only --sbi 0.5 --sbi-lower Q --epochs 3 --lr 3e-4`` from ImageNet weights; both ``--max-crops 32``
on DFDC images + videos + the other folds' talking-face sources; "ensemble" = both, joined by
``tools/make_ensemble.py --keep-first-within 0.02`` as the shipped version 3) is trained and scored on the
fold's sources with ``fak3zer0 evaluate``; the out-of-fold video scores of all folds are pooled
and compared with BASE on the same videos (paired bootstrap of the AUC difference). Writes --out
(default bench/results/source_cv.json).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FAK3ZER0 = [sys.executable, "-m", "fak3zer0.cli"]


#: train_default.py arguments per recipe, given the base checkpoint and the lower-face blend share
RECIPES = {
    "mixed": lambda init, lower: ["--init", str(init), "--sbi", "0.3", "--sbi-lower", str(lower),
                                  "--epochs", "1", "--lr", "1e-4"],
    "sbi-only": lambda init, lower: ["--real-only", "--sbi", "0.5", "--sbi-lower", str(lower),
                                     "--epochs", "3", "--lr", "3e-4"],
}
#: recipes that train several RECIPES per fold and join them with tools/make_ensemble.py
ENSEMBLES = {"ensemble": ("mixed", "sbi-only")}


def train_fold(run: Path, recipe: list[str], held: list[str], args: argparse.Namespace) -> Path:
    """Train one recipe without the fold's sources (reused when ``run/model.pt`` exists)."""
    if not (run / "model.pt").is_file():
        print(f"{run}: training without {len(held)} talking-face sources", flush=True)
        subprocess.run([sys.executable, str(ROOT / "tools/train_default.py"), "--cache", str(args.images),
                        "--cache", str(args.videos), "--exclude-source", alternation(held), "--max-crops", "32",
                        *recipe, "--size", "160", "--threads", str(args.threads), "--out", str(run)],
                       check=True, stdout=subprocess.DEVNULL)
    return run / "model.pt"


def ensemble_fold(fold: Path, members: dict[str, Path], held: list[str], args: argparse.Namespace) -> Path:
    """Join the fold's members as the shipped version 3 was joined: the second member's weight and the
    ensemble's temperature chosen on the val split of the fold's own training data."""
    out = fold / "model.pt"
    if not out.is_file():
        subprocess.run([sys.executable, str(ROOT / "tools/make_ensemble.py"), *map(str, members.values()),
                        "--cache", str(args.images), "--cache", str(args.videos), "--exclude-source",
                        alternation(held), "--max-crops", "32", "--keep-first-within", "0.02",
                        "--threads", str(args.threads), "--out", str(out)], check=True)
    return out


def paired_bootstrap(a: dict[str, tuple[int, float]], b: dict[str, tuple[int, float]]) -> dict:
    """AUC(a) - AUC(b) on the same videos (id -> (label, score)), paired bootstrap of the videos."""
    from fak3zer0.evaluate.metrics import paired_auc_difference

    ids = sorted(a)
    return paired_auc_difference([a[k][0] for k in ids], [a[k][1] for k in ids], [b[k][1] for k in ids])


def alternation(sources: list[str]) -> str:
    return "^(" + "|".join(re.escape(s) for s in sources) + ")$"


def video_scores(model: str, videos: Path, include: str, out: Path) -> dict[str, tuple[int, float]]:
    subprocess.run(FAK3ZER0 + ["evaluate", model, "--data", str(videos), "--include-source", include,
                               "--out", str(out)], check=True, capture_output=True)
    with open(out / "videos.csv") as f:
        return {r["video_id"]: (int(r["label"]), float(r["fake_probability"])) for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--videos", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--recipe", choices=sorted([*RECIPES, *ENSEMBLES]), default="mixed",
                    help="mixed: fine-tune BASE on real and self-blended fakes; sbi-only: train from "
                         "ImageNet weights on real crops and their self-blended fakes alone; ensemble: both, "
                         "joined as version 3 (tools/make_ensemble.py --keep-first-within 0.02), each member "
                         "scored too")
    ap.add_argument("--base", type=Path, default=ROOT / "runs/default-v1/model.pt",
                    help="DFDC-only checkpoint the mixed recipe fine-tunes and the folds are compared with (the "
                         "first shipped weights; the model shipped now has seen every talking-face source)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per training run")
    ap.add_argument("--sbi-lower", type=float, default=0.0,
                    help="share of the self-blended fakes blended over the lower face only (tools/train_default.py)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/source_cv")
    ap.add_argument("--out", default=str(ROOT / "bench/results/source_cv.json"))
    args = ap.parse_args(argv)

    from fak3zer0.evaluate.metrics import log_loss, roc_auc

    init = args.base
    from fak3zer0.train.recipe import require_base, source_folds

    require_base(init, args.images)
    parts = ENSEMBLES.get(args.recipe, ())
    recipe = {p: RECIPES[p](init, args.sbi_lower) for p in parts} or RECIPES[args.recipe](init, args.sbi_lower)
    folds = source_folds(args.videos, args.folds)
    pooled: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
    for i, held in enumerate(folds):
        fold, include = args.work / f"fold{i}", alternation(held)
        if parts:
            members = {p: train_fold(fold / p, recipe[p], held, args) for p in parts}
            for p, ckpt in members.items():
                pooled[f"member {p}"].update(video_scores(str(ckpt), args.videos, include, fold / p / "eval"))
            model = ensemble_fold(fold, members, held, args)
        else:
            model = train_fold(fold, recipe, held, args)
        pooled["recipe"].update(video_scores(str(model), args.videos, include, fold / "eval"))
        pooled["dfdc-only base"].update(video_scores(str(init), args.videos, include, fold / "eval_default"))
    report = {"folds": folds, "recipe": args.recipe, "train_args": recipe, "results": {}}
    for name, scores in pooled.items():
        y = np.array([v[0] for v in scores.values()])
        p = np.array([v[1] for v in scores.values()])
        report["results"][name] = {"videos": int(len(y)), "fake": int(y.sum()), "auc": round(roc_auc(y, p), 4),
                                   "log_loss": round(log_loss(y, p), 4),
                                   "accuracy": round(float(((p >= 0.5) == y).mean()), 4),
                                   "real_flagged": round(float((p[y == 0] >= 0.5).mean()), 4),
                                   "fake_flagged": round(float((p[y == 1] >= 0.5).mean()), 4)}
        r = report["results"][name]
        print(f"{name:<18} out-of-fold talking-face videos {r['videos']} ({r['fake']} fake): AUC {r['auc']:.3f} "
              f"log loss {r['log_loss']:.3f} accuracy {r['accuracy']:.3f} real/fake flagged at 0.5 "
              f"{r['real_flagged']:.2f}/{r['fake_flagged']:.2f}")
    report["paired_bootstrap_auc_difference"] = {}
    for other in (k for k in pooled if k != "recipe"):
        b = report["paired_bootstrap_auc_difference"][f"recipe - {other}"] = paired_bootstrap(pooled["recipe"],
                                                                                           pooled[other])
        print(f"recipe - {other}: AUC {b['difference']:+.3f}, 95 % interval [{b['ci95'][0]:+.3f}, "
              f"{b['ci95'][1]:+.3f}] ({b['resamples']} paired resamples of the videos; share <= 0: "
              f"{b['share_le_0']:.3f})")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

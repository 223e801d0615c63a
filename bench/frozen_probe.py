"""Leave-one-source-out with a frozen ImageNet backbone and a linear probe, trained on reals and their
self-blends only: does fine-tuning overfit the training source?

    python bench/frozen_probe.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE [--work runs/probe]
        [--reference talking-face=runs/x/model.pt --reference DFDC=runs/y/model.pt] [--rule RULE.md]

EfficientNet-Lite0 (ImageNet weights) stays frozen in eval mode at 224 px. A crop's features are the
per-channel spatial mean and standard deviation at the end of each of its seven stages and after the head
conv (``TapStatistics``: 2 x 2064 numbers), or (the "head" ablation) the 1280 pooled head means alone.
They are standardised on the training rows and an L2 logistic regression is fitted (``fit_probe``) on the
training source's train-split reals and self-blends of them (``region_mix(0.5)``, the SBI-only recipe's
synthesis; two augmented passes a real crop, each one real row and one self-blend row). The L2 strength is
chosen by AUC on the training source's val split (its real deepfakes), the temperature fitted there.

The two directions and the scoring are bench/synthesis_loso.py's (inputs from bench/source_eval.py, at most
16 crops a video, a video's probability the mean of its crops'):

* DFDC only (at most 32 crops a DFDC video) -> all 93 talking-face clips, and the held-out DFDC groups;
* talking-face only (at most 16 crops a clip, val 0.2, test 0) -> every DFDC crop and video.

``--reference DIRECTION=CKPT`` also scores a fine-tuned model trained without the same source on the same
inputs and reports the probe's AUC minus its with a paired-bootstrap interval. Features are cached under
--work, so a re-run only refits. Prints a table and writes bench/results/frozen_probe.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

SIZE = 224
HEAD = 1280  # EfficientNet-Lite head channels
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: left-out source -> (train_default.py-style selection of the training source, its val share, test share)
DIRECTIONS = {
    "talking-face": {"include": "^DFDC", "exclude": None, "max_crops": 32, "val": 0.1, "test": 0.1},
    "DFDC": {"include": None, "exclude": "^DFDC", "max_crops": 16, "val": 0.2, "test": 0.0},
}


class TapStatistics(torch.nn.Module):
    """A frozen EfficientNet-Lite's per-channel spatial mean and std at the end of every stage and after
    the head conv: ``(B, 3, S, S)`` -> ``(B, 2 * sum(channels))``, the head's 1280 means and stds last."""

    def __init__(self, backbone) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.ends = set(stage_ends(backbone))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.act(b.stem_bn(b.stem_conv(x)))
        taps: list[torch.Tensor] = []
        for i, block in enumerate(b.blocks):
            x = block(x)
            if i in self.ends:
                taps += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        head = b.act(b.head_bn(b.head_conv(x)))
        return torch.cat(taps + [head.mean(dim=(2, 3)), head.std(dim=(2, 3))], dim=1)


#: probe name -> the feature columns it reads: every tap, or (the ablation) the pooled head means alone
COLUMNS = {"taps": slice(None), "head": slice(-2 * HEAD, -HEAD)}


def stage_ends(backbone) -> list[int]:
    """Indices of the blocks that end a stage (the next block changes the channel count)."""
    outs = [blk.project_conv.out_channels for blk in backbone.blocks]
    return [i for i in range(len(outs)) if i + 1 == len(outs) or outs[i + 1] != outs[i]]


def features(extract: TapStatistics, crops: np.ndarray) -> np.ndarray:
    from fak3zer0.train.recipe import predict

    return predict(extract.backbone, crops, forward=lambda x: extract(x).T).T.astype(np.float32)


def cached(work: Path, key: str, make) -> np.ndarray:
    path = work / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"
    if not path.is_file():
        t0 = time.time()
        np.save(path, make())
        print(f"  features {key[:70]} ... {time.time() - t0:.0f} s", flush=True)
    return np.load(path)


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 200):
    """Standardised L2 logistic regression by LBFGS: returns ``score(x) -> logits``."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mu) / sd)
    yt = torch.from_numpy(y.astype(np.float32))
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_, b_ = w.detach().numpy(), float(b.detach())
    return lambda z: ((z - mu) / sd) @ w_ + b_


def training_rows(crops, marks, idx, seed: int, passes: int = 2):
    """Augmented reals and self-blends of them: ``passes`` x (one real, one self-blend) per crop."""
    from fak3zer0.data.sbi import region_mix
    from fak3zer0.train.recipe import augment

    rng, blend = np.random.default_rng(seed), region_mix(0.5)
    real, fake = [], []
    for _ in range(passes):
        for i in idx:
            real.append(augment(crops[i], rng))
            fake.append(augment(blend(crops[i], marks[i], rng)[0], rng))
    return np.stack(real + fake), np.r_[np.zeros(len(real)), np.ones(len(fake))]


def video_probs(crop_logits: np.ndarray, sizes: list[int], temperature: float) -> np.ndarray:
    """An input's probability: the mean of its crops' tempered probabilities (as source_eval scores)."""
    from fak3zer0.evaluate.metrics import sigmoid
    from source_eval import per_input

    return per_input(sigmoid(crop_logits / temperature), sizes)


def run_direction(left_out: str, args, extract: TapStatistics) -> tuple[list[dict], dict]:
    from fak3zer0.evaluate.metrics import fit_temperature, roc_auc
    from fak3zer0.train.recipe import load_crops, recipe_split
    from source_eval import load_inputs

    d = DIRECTIONS[left_out]
    crops, marks, labels, groups, _ = load_crops([args.images, args.videos], SIZE, d["include"], d["exclude"],
                                                 d["max_crops"])
    split = np.array([recipe_split(g, 0, d["val"], d["test"]) for g in groups])
    tr = np.where((split == "train") & (labels == 0))[0]
    va = np.where(split == "val")[0]
    print(f"{left_out} left out: {len(tr)} training reals, {len(va)} val crops", flush=True)
    rows_x, rows_y = training_rows(crops, marks, tr, args.seed)
    if left_out == "talking-face":
        targets = {"all 93 talking-face clips": (load_inputs([args.videos], SIZE, 16, ["all"]), "talking-face"),
                   "held-out DFDC groups (test)": (load_inputs([args.images], SIZE, 16, ["test"]), "DFDC")}
    else:
        targets = {"every DFDC input": (load_inputs([args.images, args.videos], SIZE, 16, ["all"]), "DFDC")}
    out_rows, scores = [], {}
    tag = f"{left_out}:{args.seed}:{len(tr)}:{len(va)}"
    fx = lambda c: features(extract, c)  # noqa: E731
    all_tr = cached(args.work, f"train:{tag}", lambda: fx(rows_x))
    all_va = cached(args.work, f"val:{tag}", lambda: fx(crops[va]))
    all_te = {}
    for scored_on, (inputs, group) in targets.items():
        keep = [x for x in inputs if x[1] == group]
        all_te[scored_on] = (keep, cached(args.work, f"{scored_on}:{len(keep)}",
                                          lambda: fx(np.concatenate([x[4] for x in keep]))))
    for name, cols in COLUMNS.items():
        f_tr, f_va = all_tr[:, cols], all_va[:, cols]
        fits = {l2: fit_probe(f_tr, rows_y, l2) for l2 in L2_GRID}
        val_auc = {l2: roc_auc(labels[va], f(f_va)) for l2, f in fits.items()}
        best = max(L2_GRID, key=lambda l2: val_auc[l2])
        temp = fit_temperature(fits[best](f_va), labels[va])
        print(f"  {name}: val AUC by L2 {json.dumps({str(k): round(v, 4) for k, v in val_auc.items()})} "
              f"-> L2 {best}, T {temp:.3f}", flush=True)
        for scored_on, (keep, f_te) in all_te.items():
            probs = video_probs(fits[best](f_te[:, cols]), [len(x[4]) for x in keep], temp)
            scores[(name, scored_on)] = (keep, probs)
            out_rows += metric_rows(f"probe-{name}", left_out, scored_on, keep, probs,
                                    {"l2": best, "temperature": temp, "val_auc": round(val_auc[best], 4),
                                     "val_auc_by_l2": {str(k): round(v, 4) for k, v in val_auc.items()}})
    return out_rows, scores


def metric_rows(variant: str, left_out: str, scored_on: str, keep: list, probs: np.ndarray, extra: dict) -> list[dict]:
    from fak3zer0.evaluate.metrics import log_loss, roc_auc

    rows = []
    for kind in sorted({x[0] for x in keep}):
        m = np.array([x[0] == kind for x in keep])
        y = np.array([x[3] for x in keep])[m]
        if len(set(y)) < 2:
            continue
        p = probs[m]
        rows.append({"variant": variant, "left_out": left_out, "scored_on": scored_on, "set": kind,
                     "n": int(m.sum()), "fake": int(y.sum()), "auc": round(roc_auc(y, p), 4),
                     "log_loss": round(log_loss(y, p), 4), "accuracy": round(float(((p >= 0.5) == y).mean()), 4),
                     "real_flagged": round(float((p[y == 0] >= 0.5).mean()), 4),
                     "fake_flagged": round(float((p[y == 1] >= 0.5).mean()), 4), **extra})
    return rows


def reference_rows(left_out: str, ckpt: str, scores: dict) -> tuple[list[dict], list[dict]]:
    """The fine-tuned reference's rows on the probe's inputs, and the probe minus it (paired bootstrap)."""
    from fak3zer0.evaluate.metrics import paired_auc_difference
    from fak3zer0.models.hub import resolve_model
    from fak3zer0.train.recipe import predict

    loaded = resolve_model(ckpt)
    rows, paired, refs = [], [], {}
    for (name, scored_on), (keep, probs) in scores.items():
        if scored_on not in refs:
            logits = predict(loaded.model, np.concatenate([x[4] for x in keep]))
            refs[scored_on] = video_probs(logits, [len(x[4]) for x in keep], loaded.temperature)
            rows += metric_rows(f"fine-tuned {Path(ckpt).parent.name}", left_out, scored_on, keep, refs[scored_on], {})
        for kind in sorted({x[0] for x in keep}):
            m = np.array([x[0] == kind for x in keep])
            y = np.array([x[3] for x in keep])[m]
            if len(set(y)) == 2:
                paired.append({"probe": name, "left_out": left_out, "scored_on": scored_on, "set": kind,
                               **paired_auc_difference(y, probs[m], refs[scored_on][m])})
    return rows, paired


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True, help="dev image cache (tools/prep_dev_images.py)")
    ap.add_argument("--videos", type=Path, required=True, help="dev video cache (fak3zer0 preprocess)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/probe", help="feature cache")
    ap.add_argument("--left-out", action="append", choices=sorted(DIRECTIONS), help="default: both")
    ap.add_argument("--reference", action="append", default=[], metavar="LEFT_OUT=CKPT",
                    help="a fine-tuned model trained without LEFT_OUT, scored on the same inputs for a paired AUC "
                         "difference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rule", type=Path, default=None, help="the experiment's registered rule, copied into the JSON")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/frozen_probe.json")
    args = ap.parse_args(argv)
    refs = dict(r.split("=", 1) for r in args.reference)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    from fak3zer0.models import create_model

    backbone = create_model("efficientnet_lite0", pretrained="imagenet", size=SIZE)
    extract = TapStatistics(backbone)
    rows, paired = [], []
    for left_out in args.left_out or list(DIRECTIONS):
        r, scores = run_direction(left_out, args, extract)
        rows += r
        if left_out in refs:
            r2, p = reference_rows(left_out, refs[left_out], scores)
            rows += r2
            paired += p
    print(f"\n{'variant':<44} {'left out':<13} {'scored on':<28} {'set':<7} {'n':>6} {'AUC':>6} {'log loss':>8} "
          f"{'acc':>6} {'real>=.5':>8}")
    for r in rows:
        print(f"{r['variant']:<44} {r['left_out']:<13} {r['scored_on'][:28]:<28} {r['set']:<7} {r['n']:>6} "
              f"{r['auc']:>6.3f} {r['log_loss']:>8.3f} {r['accuracy']:>6.3f} {r['real_flagged']:>8.3f}")
    for p in paired:
        print(f"probe-{p['probe']} minus fine-tuned, {p['left_out']} left out, {p['scored_on'][:28]} {p['set']}: "
              f"{p['difference']:+.3f} [{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}]")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None, "seed": args.seed,
                                    "size": SIZE, "l2_grid": L2_GRID, "references": refs, "rows": rows,
                                    "paired": paired}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fine-tune on self-blends of the user's own k genuine files (experiment X), against AdaBN and no adaptation.

    python bench/sbi_adapt.py --images DEV_IMAGE_CACHE --videos DEV_VIDEO_CACHE \\
        --direction talking-face SBI224_WITHOUT_TF --direction dfdc SBI224_WITHOUT_DFDC [--rule RULE.md]
    python bench/sbi_adapt.py --merge TF.json DFDC.json     # directions run side by side, joined

``fak3zer0 threshold`` asks the user for k genuine files of the kind they will check. This bench asks
whether those files can teach the model the unseen source as well: a copy of a member trained without
the left-out source is fine-tuned for a few steps on the k files' crops, each kept real or turned into a
self-blended fake (the SBI protocol on the target's own faces). Simulated per direction over random
draws of k real inputs of the left-out source; every input sharing a leakage group (DFDC original,
talking-face person or clip) with a drawn real leaves the scored set. Compared on the same draws with
the unadapted member and with its BatchNorm statistics re-estimated on the same k files
(bench/adabn.py). The DFDC direction scores bench/adapt_threshold.py's fixed subset. Prints a table
and writes bench/results/sbi_adapt.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

#: the fine-tuning recipe the rule fixed before any run
STEPS, BATCH, LR, SBI_SHARE, LOWER_SHARE = 120, 16, 1e-4, 0.5, 0.5
ALPHA = 0.10
#: (cells: k, draws, gating) per left-out source
CELLS = {"talking-face": [(20, 5, True)], "dfdc": [(20, 5, True), (200, 3, False)]}


@dataclass
class LeftOut:
    """The left-out source's inputs: crops and five-point landmarks per input, label, leakage group."""
    crops: list[np.ndarray]
    marks: list[np.ndarray]
    labels: np.ndarray
    groups: list[str]


def read_left_out(cache_path: Path, group: str, size: int, max_crops: int) -> LeftOut:
    """Every input of the source ``group``, in the order bench/source_eval.py reads them."""
    from fak3zer0.data.cache import FaceCropCache
    from source_eval import source_group

    cache = FaceCropCache(cache_path)
    entries = [e for e in cache.filter() if source_group(e) == group]
    pairs = [cache.crops_with_landmarks(e, size, max_crops) for e in entries]
    return LeftOut([c for c, _ in pairs], [m for _, m in pairs], np.array([int(e["label"]) for e in entries]),
                   [e["group"] for e in entries])


def sbi_finetune(model, crops: np.ndarray, marks: np.ndarray, seed: int):
    """A copy of ``model`` trained ``STEPS`` steps on ``crops``, each sample real or self-blended (fake)."""
    import torch

    from fak3zer0.data.sbi import region_mix
    from fak3zer0.models.inputs import crops_to_tensor
    from fak3zer0.train.recipe import augment_with_mask

    model = copy.deepcopy(model).train()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    blend = region_mix(LOWER_SHARE)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(STEPS):
        imgs, ys = [], []
        for i in rng.integers(0, len(crops), BATCH):
            img, y = crops[i], 0.0
            if rng.random() < SBI_SHARE:
                img, _ = blend(img, marks[i], rng)
                y = 1.0
            imgs.append(augment_with_mask(img, np.zeros(img.shape[:2], np.float32), rng)[0])
            ys.append(y)
        opt.zero_grad()
        loss = loss_fn(model(crops_to_tensor(np.stack(imgs), model.input_spec)).reshape(-1),
                       torch.tensor(ys, dtype=torch.float32))
        loss.backward()
        opt.step()
    return model.eval()


def input_scores(model, temperature: float, inputs: list[np.ndarray]) -> np.ndarray:
    """Each input's score: the mean of its crops' calibrated probabilities (as source_eval)."""
    import torch

    from fak3zer0.evaluate.metrics import sigmoid
    from fak3zer0.train.recipe import predict
    from source_eval import per_input

    with torch.inference_mode():
        logits = predict(model.eval(), np.concatenate(inputs))
    return per_input(sigmoid(logits / temperature), [len(c) for c in inputs])


def rates(p_ref: np.ndarray, p: np.ndarray, y: np.ndarray) -> dict:
    """False alarms on ``p``'s reals and fakes caught, threshold set on the k reference reals at ALPHA."""
    from fak3zer0.evaluate.metrics import false_alarm_threshold

    t = false_alarm_threshold(p_ref, ALPHA)
    return {"false_alarm": round(float((p[y == 0] >= t).mean()), 4), "caught": round(float((p[y == 1] >= t).mean()), 4)}


def one_draw(model, temperature: float, data: LeftOut, scored: np.ndarray, k: int, seed: int, base: np.ndarray) -> dict:
    """One draw of k reals: AUC and rates of the unadapted, AdaBN and SBI-fine-tuned model on the rest
    (``base``: the unadapted scores of the ``scored`` inputs)."""
    from adabn import adapt_batchnorm
    from fak3zer0.evaluate.metrics import paired_auc_difference, roc_auc

    # positions within ``scored`` (sorted, so ``scored[ref]`` is sorted too)
    ref = np.sort(np.random.default_rng(seed).choice(np.flatnonzero(data.labels[scored] == 0), k, replace=False))
    drawn = {data.groups[i] for i in scored[ref]}
    keep = np.array([data.groups[i] not in drawn for i in scored])
    y = data.labels[scored][keep]
    ref_crops = np.concatenate([data.crops[i] for i in scored[ref]])
    ref_marks = np.concatenate([data.marks[i] for i in scored[ref]])
    inputs = [data.crops[i] for i in scored]
    scores = {"unadapted": base,
              "adabn": input_scores(adapt_batchnorm(model, ref_crops), temperature, inputs),
              "sbi_finetune": input_scores(sbi_finetune(model, ref_crops, ref_marks, seed), temperature, inputs)}
    out = {"k": k, "seed": seed, "scored": int(keep.sum()), "reals": int((y == 0).sum()), "fakes": int((y == 1).sum())}
    for name, p in scores.items():
        out[name] = {"auc": round(roc_auc(y, p[keep]), 4), **rates(p[ref], p[keep], y)}
    for name in ("adabn", "sbi_finetune"):
        out[name]["vs_unadapted"] = paired_auc_difference(y, scores[name][keep], base[keep])
    return out


def run_direction(args, left: str, checkpoint: Path) -> dict:
    from adapt_threshold import subset
    from ensemble_weight_cv import LEFT_OUT_INPUTS
    from fak3zer0.evaluate.metrics import roc_auc
    from fak3zer0.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    model, temperature = loaded.model.eval(), float(loaded.temperature)
    kind, group = LEFT_OUT_INPUTS[left]
    data = read_left_out(getattr(args, kind), group, model.input_spec.size, args.max_crops)
    scored = subset(data.labels, left)  # all talking-face clips, or adapt_threshold's DFDC subset
    base = input_scores(model, temperature, [data.crops[i] for i in scored])
    result = {"checkpoint": str(checkpoint), "temperature": temperature, "inputs": int(len(scored)),
              "unadapted_auc_all": round(roc_auc(data.labels[scored], base), 4), "draws": []}
    print(f"{left} left out: {len(scored)} inputs scored, unadapted AUC {result['unadapted_auc_all']:.3f}",
          flush=True)
    for k, draws, gating in CELLS[left]:
        for seed in range(draws):
            d = one_draw(model, temperature, data, scored, k, seed, base)
            d["gating"] = gating
            result["draws"].append(d)
            print(f"  k={k:<4} seed {seed}: {d['scored']:>5} scored  AUC unadapted {d['unadapted']['auc']:.3f}  "
                  f"AdaBN {d['adabn']['auc']:.3f}  SBI fine-tune {d['sbi_finetune']['auc']:.3f}  "
                  f"(false alarms {d['unadapted']['false_alarm']:.2f}/{d['adabn']['false_alarm']:.2f}/"
                  f"{d['sbi_finetune']['false_alarm']:.2f}, caught {d['unadapted']['caught']:.2f}/"
                  f"{d['adabn']['caught']:.2f}/{d['sbi_finetune']['caught']:.2f})", flush=True)
    return result


def summarise(directions: dict[str, dict]) -> dict:
    """Mean AUC gains per (direction, k) and the rule's gate (k = 20 cells)."""
    cells, gate = {}, {}
    for left, r in directions.items():
        for k in sorted({d["k"] for d in r["draws"]}):
            ds = [d for d in r["draws"] if d["k"] == k]
            cell = {arm: round(float(np.mean([d[arm]["vs_unadapted"]["difference"] for d in ds])), 4)
                    for arm in ("adabn", "sbi_finetune")}
            cell.update({f"{arm}_{m}": round(float(np.mean([d[arm][m] for d in ds])), 4)
                         for arm in ("unadapted", "adabn", "sbi_finetune") for m in ("auc", "false_alarm", "caught")})
            cells[f"{left} k={k}"] = cell
            if ds[0]["gating"]:
                gate[left] = (cell["sbi_finetune"] >= 0.03 and cell["sbi_finetune"] >= cell["adabn"] + 0.01)
    return {"cells": cells, "gate": gate, "adopt": bool(gate) and all(gate.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, help="dev image cache (tools/prep_dev_images.py)")
    ap.add_argument("--videos", type=Path, help="dev video cache (fak3zer0 preprocess)")
    ap.add_argument("--direction", nargs=2, action="append", default=[], metavar=("LEFT_OUT", "CHECKPOINT"),
                    help=f"a model trained without LEFT_OUT ({', '.join(CELLS)})")
    ap.add_argument("--max-crops", type=int, default=16, help="crops per left-out video (as source_eval)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--merge", type=Path, nargs="+", default=[], metavar="JSON",
                    help="join the directions of earlier outputs (one direction each, run side by side) instead")
    ap.add_argument("--rule", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/sbi_adapt.json")
    args = ap.parse_args(argv)
    bad = [d[0] for d in args.direction if d[0] not in CELLS]
    if bad:
        ap.error(f"unknown left-out source {bad[0]!r}: one of {', '.join(CELLS)}")
    if bool(args.direction) == bool(args.merge):
        ap.error("give --direction (run) or --merge (join earlier runs), not both or neither")
    from ensemble_weight_cv import LEFT_OUT_INPUTS

    missing = [f"--{LEFT_OUT_INPUTS[left][0]}" for left, _ in args.direction
               if getattr(args, LEFT_OUT_INPUTS[left][0]) is None]
    if missing:
        ap.error(f"{missing[0]} is needed for the directions given")
    import torch

    torch.set_num_threads(args.threads)
    directions = {left: run_direction(args, left, Path(ckpt)) for left, ckpt in args.direction}
    for path in args.merge:
        directions.update(json.loads(path.read_text())["directions"])
    summary = summarise(directions)
    print(f"{'cell':<18} {'AUC none / AdaBN / SBI-ft':>28} {'gain AdaBN':>11} {'gain SBI-ft':>12}")
    for name, c in summary["cells"].items():
        print(f"{name:<18} {c['unadapted_auc']:>10.3f} / {c['adabn_auc']:.3f} / {c['sbi_finetune_auc']:.3f} "
              f"{c['adabn']:>+11.3f} {c['sbi_finetune']:>+12.3f}")
    print(f"gate (k = 20: SBI fine-tune >= +0.03 and >= AdaBN + 0.01 in both directions): {summary['gate']} "
          f"-> adopt: {summary['adopt']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rule": args.rule.read_text() if args.rule else None,
                                    "recipe": {"steps": STEPS, "batch": BATCH, "lr": LR, "sbi_share": SBI_SHARE,
                                               "lower_share": LOWER_SHARE, "alpha": ALPHA},
                                    "directions": directions, **summary}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

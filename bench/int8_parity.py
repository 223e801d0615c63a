"""Does the 8-bit ONNX twin score like the float32 model? Accuracy and per-score drift, measured.

    python bench/int8_parity.py [--model fak3zer0-default] [--images CACHE] [--videos CACHE]

--images: the DFDC face-crop image cache the default model was trained from
(``python tools/prep_dev_images.py CACHE``); its held-out test groups are the ones
``tools/train_default.py`` never trained on (same grouped hash split, seed 0, 10 % test).
--videos: a cache of the shared dev videos (``fak3zer0 preprocess ../shared/data/dev/manifest.csv
--layout manifest --out CACHE``); a video's score is the mean of its crops' probabilities.

For each set it reports AUC and log loss of the float32 twin and the 8-bit twin, the absolute
change of each probability (mean / 95th percentile / max) and how many verdicts (at 0.5) flip.
Prints a table, writes bench/results/int8_parity.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _probs(twin, x: np.ndarray, temperature: float, batch: int = 8) -> np.ndarray:
    logits = np.concatenate([twin.logits(x[i:i + batch]) for i in range(0, len(x), batch)])
    return 1.0 / (1.0 + np.exp(-logits / temperature))


def _compare(name: str, labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict:
    from fak3zer0.evaluate.metrics import log_loss, roc_auc

    d = np.abs(a - b)
    return {"set": name, "n": int(len(labels)), "positives": int(labels.sum()),
            "auc_fp32": round(roc_auc(labels, a), 4), "auc_int8": round(roc_auc(labels, b), 4),
            "log_loss_fp32": round(log_loss(labels, a), 4), "log_loss_int8": round(log_loss(labels, b), 4),
            "abs_diff_mean": round(float(d.mean()), 4), "abs_diff_p95": round(float(np.percentile(d, 95)), 4),
            "abs_diff_max": round(float(d.max()), 4), "verdict_flips": int(((a >= 0.5) != (b >= 0.5)).sum())}


def image_set(cache: Path, spec, twins, temperature: float) -> list[dict]:
    from fak3zer0.models.inputs import crops_to_tensor
    from fak3zer0.train.recipe import load_crops, recipe_split

    crops, _, labels, groups, _ = load_crops([cache], spec.size, None, None, 1)
    test = np.array([recipe_split(g) == "test" for g in groups])
    x = crops_to_tensor(crops[test], spec).numpy()
    a, b = (_probs(t, x, temperature) for t in twins)
    return [_compare("held-out DFDC crops (per crop)", labels[test], a, b)]


def video_set(cache: Path, spec, twins, temperature: float) -> list[dict]:
    from fak3zer0.data.cache import FaceCropCache
    from fak3zer0.models.inputs import crops_to_tensor

    c = FaceCropCache(cache)
    scores, labels, dfdc = ([], []), [], []
    for e in c.filter():
        x = crops_to_tensor(c.crops(e, spec.size), spec).numpy()
        for out, twin in zip(scores, twins):
            out.append(float(_probs(twin, x, temperature).mean()))
        labels.append(int(e["label"]))
        dfdc.append(e.get("source", "").startswith("DFDC"))
    y, a, b, d = np.array(labels), np.array(scores[0]), np.array(scores[1]), np.array(dfdc)
    rows = [_compare("dev videos, all (per video)", y, a, b)]
    for name, m in (("dev videos, talking-face", ~d), ("dev videos, DFDC", d)):
        if m.any() and len(set(y[m])) == 2:
            rows.append(_compare(name, y[m], a[m], b[m]))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fak3zer0-default")
    ap.add_argument("--images", type=Path, default=None, help="DFDC image cache (tools/prep_dev_images.py)")
    ap.add_argument("--videos", type=Path, default=None, help="dev video cache (fak3zer0 preprocess)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/int8_parity.json"))
    args = ap.parse_args(argv)
    if not (args.images or args.videos):
        ap.error("give --images and/or --videos")

    from fak3zer0.models.hub import resolve_model
    from fak3zer0.models.ort import load_twin

    loaded = resolve_model(args.model)
    twins = [load_twin(loaded.path, loaded.version, threads=1, int8=q) for q in (False, True)]
    if None in twins:
        raise SystemExit(f"{args.model} needs both ONNX twins: fak3zer0 export {args.model} --int8 --calibration CACHE")
    rows = []
    if args.images:
        rows += image_set(args.images, loaded.input_spec, twins, loaded.temperature)
    if args.videos:
        rows += video_set(args.videos, loaded.input_spec, twins, loaded.temperature)
    head = f"{'set':<34} {'n':>5} {'AUC fp32':>8} {'AUC int8':>8} {'LL fp32':>8} {'LL int8':>8} " \
           f"{'|dp| mean':>9} {'p95':>6} {'max':>6} {'flips':>5}"
    print(head)
    for r in rows:
        print(f"{r['set']:<34} {r['n']:>5} {r['auc_fp32']:>8.4f} {r['auc_int8']:>8.4f} {r['log_loss_fp32']:>8.4f} "
              f"{r['log_loss_int8']:>8.4f} {r['abs_diff_mean']:>9.4f} {r['abs_diff_p95']:>6.3f} "
              f"{r['abs_diff_max']:>6.3f} {r['verdict_flips']:>5}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "version": loaded.version, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

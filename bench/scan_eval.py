"""Accuracy of what users actually run: `fak3zer0 scan` on the labelled dev videos, end to end.

    python bench/scan_eval.py [--setting NAME=OPTIONS ...] [--frames 32]

Scans every video of ../shared/data/dev/manifest.csv once per setting (fresh database each, the
shipped default model unless an option says otherwise), joins the verdicts with the manifest's
labels and reports video AUC / log loss / accuracy for all videos, the talking-face sources and
the DFDC sources, plus the wall time of each scan and how far the settings' probabilities differ.

The default settings compared are ``default`` (today's defaults: 8-bit ONNX scoring, face search
near known faces) and ``float32-full`` (``--backend torch --full-detect-every 1``: float32 PyTorch,
whole-frame face detection on every 4th sampled frame). Unlike ``fak3zer0 evaluate`` on a
preprocessed cache, this covers decoding, face detection, tracking, cropping, scoring and
aggregation exactly as shipped. Writes bench/results/scan_eval.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"default": {}, "float32-full": {"backend": "torch", "full_detect_every": 1}}


def _setting(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition("=")
    opts = {}
    for kv in filter(None, rest.split(",")):
        k, _, v = kv.partition(":")
        opts[k] = int(v) if v.isdigit() else v
    return name, opts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", type=Path, default=ROOT.parent / "shared/data/dev")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=KEY:VALUE,...",
                    help="ScanOptions to compare, e.g. fast=detect_every:8 (default: default and float32-full)")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "bench/results/scan_eval.json"))
    args = ap.parse_args(argv)

    from fak3zer0 import defaults
    from fak3zer0.evaluate.metrics import log_loss, roc_auc
    from fak3zer0.scan import ScanOptions, scan
    from fak3zer0.store import ResultStore

    rows = [r for r in csv.DictReader(open(args.dev / "manifest.csv")) if r["kind"] == "video"]
    truth = {str((args.dev / r["relpath"]).resolve()): r for r in rows}
    settings = dict(_setting(s) for s in args.setting) or SETTINGS
    scores: dict[str, dict[str, float]] = {}
    report: dict = {"videos": len(truth), "settings": {}}
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "videos.txt"
        listing.write_text("".join(f"{p}\n" for p in truth))
        for name, extra in settings.items():
            opts = ScanOptions(frames=args.frames or defaults.DEFAULT_FRAMES, **extra)
            t0 = time.perf_counter()
            s = scan([f"@{listing}"], str(Path(tmp) / f"{name}.sqlite"), opts, warn=lambda m: None)
            wall = time.perf_counter() - t0
            store = ResultStore.open(Path(tmp) / f"{name}.sqlite")
            scores[name] = {r["path"]: r["fake_probability"] for r in store.iter_results()
                            if r["fake_probability"] is not None}
            report["settings"][name] = {"options": extra, "seconds": round(wall, 2), "errors": s.errors,
                                        "no_face": s.no_face, "model_version": s.model_version}
    common = sorted(set.intersection(*(set(v) for v in scores.values())))
    y = np.array([truth[p]["label"] == "fake" for p in common], dtype=int)
    dfdc = np.array([truth[p]["dataset"].startswith("DFDC") for p in common])
    subsets = {"all": np.ones(len(common), bool), "talking-face": ~dfdc, "DFDC": dfdc}
    print(f"{'setting':<14} {'subset':<13} {'n':>4} {'fake':>4} {'AUC':>6} {'log loss':>8} {'acc':>6}  scan time")
    for name in scores:
        p = np.array([scores[name][q] for q in common])
        report["settings"][name]["metrics"] = {}
        for sub, m in subsets.items():
            if m.sum() == 0:
                continue
            met = {"n": int(m.sum()), "fake": int(y[m].sum()), "auc": round(roc_auc(y[m], p[m]), 4),
                   "log_loss": round(log_loss(y[m], p[m]), 4), "accuracy": round(float(((p[m] >= 0.5) == y[m]).mean()), 4)}
            report["settings"][name]["metrics"][sub] = met
            print(f"{name:<14} {sub:<13} {met['n']:>4} {met['fake']:>4} {met['auc']:>6.3f} {met['log_loss']:>8.3f} "
                  f"{met['accuracy']:>6.3f}  {report['settings'][name]['seconds']:.1f} s")
    names = list(scores)
    for other in names[1:]:
        a = np.array([scores[names[0]][q] for q in common])
        b = np.array([scores[other][q] for q in common])
        d = np.abs(a - b)
        report[f"diff_{names[0]}_vs_{other}"] = {"mean": round(float(d.mean()), 4), "max": round(float(d.max()), 4),
                                                 "verdict_flips": int(((a >= 0.5) != (b >= 0.5)).sum())}
        print(f"{names[0]} vs {other}: video probability |diff| mean {d.mean():.3f}, max {d.max():.3f}, "
              f"{int(((a >= 0.5) != (b >= 0.5)).sum())} verdicts differ")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``fak3zer0 preprocess DATASET --layout L --out CACHE``: decode + faces once, into a face-crop cache."""
from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """Run decoding, face detection, tracking and landmarks once per video/image and store
aligned face crops in a cache folder (format: docs/cache-format.md) that `train` and `evaluate` read.

Uses all cores, shows progress, and is resumable: run the same command again after a crash or
Ctrl-C and it continues where it stopped. Unreadable files and files without faces are recorded
in the index (status "error" / "no_face") instead of stopping the run."""

LAYOUT_HELP = "dfdc | celebdf | wilddeepfake | ffpp | folders | manifest (a manifest.csv or its folder)"


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("preprocess", help="build a face-crop cache from a dataset", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="dataset root folder (or manifest.csv for --layout manifest)")
    p.add_argument("--layout", required=True, help=LAYOUT_HELP)
    p.add_argument("--out", required=True, metavar="CACHE", help="cache folder to create or continue")
    p.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    p.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    p.add_argument("--margin", type=float, default=1.3, help="crop = face box x margin (default 1.3)")
    p.add_argument("--max-tracks", type=int, default=2, help="faces kept per video (default 2)")
    p.add_argument("--face-detector", default="mtcnn", choices=["mtcnn", "haar"])
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--split", nargs=3, type=float, default=None, metavar=("TRAIN", "VAL", "TEST"),
                   help="re-split by leakage group with these fractions (default: the layout's own splits)")
    p.add_argument("--retry-errors", action="store_true", help="redo samples whose last attempt failed")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from fak3zer0.data.cache import preprocess
    from fak3zer0.data.readers import read_dataset
    from fak3zer0.data.splits import split_by_group, summarise

    samples = read_dataset(args.dataset, args.layout)
    if args.split:
        samples = split_by_group(samples, tuple(args.split))
    if not args.json:
        print(summarise(samples), file=sys.stderr)
    counts = preprocess(samples, args.out, crop_size=args.size, margin=args.margin, frames=args.frames,
                        face_detector=args.face_detector, max_tracks=args.max_tracks, workers=args.workers,
                        progress=sys.stderr.isatty(), retry_errors=args.retry_errors)
    if args.json:
        print(json.dumps(counts))
    else:
        print("  ".join(f"{k}: {v}" for k, v in counts.items()))
    return 1 if counts.get("error") and counts.get("error") == counts.get("processed") else 0

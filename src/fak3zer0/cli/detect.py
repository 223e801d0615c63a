"""``fak3zer0 detect PATH...``: verdicts for videos, images and folders."""
from __future__ import annotations

import argparse
import json
import sys

from fak3zer0.cli._common import (add_model_options, add_progress_option, analyse, collect_paths, format_table,
                                  make_detector)

DESCRIPTION = """Decide whether the faces in videos/images are real or manipulated.

PATH may be a video (mp4, avi, mov, mkv, webm, 3gp, ...), an image (jpg, png, webp, bmp),
a folder (searched recursively) or a glob. Each input gets a verdict: real, fake, no_face
or error, with the fake probability of the most suspicious face.

Exit status: 0 when every input was analysed (including "no_face"), 1 when any input
could not be read (its error is printed on stderr and, with --json, in its "error" field)."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("detect", help="analyse videos/images and print verdicts", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="files, folders or globs to analyse")
    p.add_argument("--inputs-from", metavar="FILE", help="also read paths from FILE, one per line")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON document (a list, one object per input)")
    p.add_argument("--heatmap", metavar="DIR", help="write a heat map PNG per face (Grad-CAM) into DIR")
    add_progress_option(p)
    p.set_defaults(func=run)
    return p


def fake_frames(v, threshold: float) -> str:
    """``k/n``: of the most suspicious face's n scored frames, k are at or above ``threshold`` ("-" without a face)."""
    if not v.faces:
        return "-"
    face = max(v.faces, key=lambda f: f.fake_probability)
    return f"{sum(fr.fake_probability >= threshold for fr in face.frames)}/{len(face.frames)}"


def _row(v, threshold: float) -> list[str]:
    p = "-" if v.fake_probability is None else f"{v.fake_probability:.3f}"
    return [v.path, v.verdict.upper() if v.verdict == "fake" else v.verdict, p, fake_frames(v, threshold),
            str(len(v.faces)), str(v.frames_used), f"{v.seconds:.2f}"]


def run(args) -> int:
    from fak3zer0.media import discover_inputs
    from fak3zer0.models.hub import model_card

    paths = collect_paths(args)
    if not paths:
        print("fak3zer0 detect: give at least one PATH (see --help)", file=sys.stderr)
        return 2
    items = discover_inputs(paths)
    detector = make_detector(args)
    results = analyse(items, detector, args.progress, args.heatmap)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        headers = ["file", "verdict", "fake_p", "fake_frames", "faces", "frames", "seconds"]
        print(format_table(headers, [_row(r, detector.threshold) for r in results], "llrrrrr"))
        print(f"\nmodel: {detector.model_name}   threshold: {detector.threshold:.4g}")
        card = model_card(detector.model_name)
        if card and any(r.fake_probability is not None for r in results):
            print(f"note: fake_p is calibrated on the model's training sources; footage from elsewhere often scores "
                  f"too high\n      (model card: {card});\n      `fak3zer0 threshold REALS...` sets a threshold from "
                  f"your own genuine footage that bounds false alarms")
    return 1 if any(r.verdict == "error" for r in results) else 0

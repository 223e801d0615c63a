"""Copy a trained checkpoint into the package as a shipped model, with its card facts.

    python tools/ship_model.py CHECKPOINT --name fak3zer0-default \\
        --eval cross_source=runs/eval/x/metrics.json --note "trained on 2 CPU cores"

Adds evaluation results (``video`` / ``frame`` metrics from ``fak3zer0 evaluate``'s metrics.json)
to the checkpoint's ``metrics``, records provenance in ``meta`` and writes
``src/fak3zer0/weights/NAME.pt``. The weights themselves are not changed.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from fak3zer0.models.checkpoint import atomic_torch_save, read_checkpoint
from fak3zer0.paths import PACKAGED_WEIGHTS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--name", default="fak3zer0-default")
    ap.add_argument("--description", default="")
    ap.add_argument("--eval", action="append", default=[], metavar="LABEL=METRICS_JSON")
    ap.add_argument("--note", default="")
    ap.add_argument("--half", action="store_true",
                    help="store floating-point tensors as float16 (half the size; loaded back into float32)")
    args = ap.parse_args()
    ckpt = read_checkpoint(args.checkpoint)
    metrics = dict(ckpt.get("metrics", {}))
    for item in args.eval:
        label, _, path = item.partition("=")
        res = json.loads(Path(path).read_text())
        metrics[label] = {"video": res.get("video"), "frame": res.get("frame"), "counts": res.get("counts")}
    ckpt["metrics"] = metrics
    meta = dict(ckpt.get("meta", {}))
    meta.update({"shipped_as": args.name, "shipped_at": time.strftime("%Y-%m-%d"),
                 "trained_on": meta.get("trained_on") or f"{platform.machine()} CPU ({platform.platform()})",
                 "note": args.note})
    if args.description:
        meta["description"] = args.description
    if args.half:

        ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
        meta["stored_as"] = "float16"
    ckpt["meta"] = meta
    out = PACKAGED_WEIGHTS / f"{args.name}.pt"
    atomic_torch_save(ckpt, out)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

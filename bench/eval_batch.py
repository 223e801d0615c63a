"""Validation batch size on a CPU: ``predict_logits`` (what ``fak3zer0 train`` validates with each epoch and
``fak3zer0 evaluate`` scores with) on one split of a face-crop cache, in batches of 64 (the Trainer's old default,
2 x 32) vs 8 (``defaults.CPU_BATCH_SIZE``, its default on a CPU now), interleaved, same logits checked.

    python bench/eval_batch.py CACHE [--split val] [--model efficientnet_lite0:224 --model cnn_lstm] [--repeats 2]

Prints a table and writes bench/results/eval_batch.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--model", action="append", default=None, metavar="NAME[:SIZE]",
                    help="registry model, untrained weights (speed only); default: efficientnet_lite0:224, cnn_lstm")
    ap.add_argument("--batch", type=int, action="append", default=None, help="default: 64 and 8")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/eval_batch.json")
    args = ap.parse_args(argv)
    from fak3zer0.evaluate.runner import _eval_dataset, _sources
    from fak3zer0.evaluate.scoring import predict_logits
    from fak3zer0.models import create_model

    torch.set_num_threads(args.threads)
    sources = _sources([args.cache], None, None, 32)
    batches = args.batch or [64, 8]
    rows = []
    for spec in args.model or ["efficientnet_lite0:224", "cnn_lstm"]:
        name, _, size = spec.partition(":")
        model = create_model(name, pretrained=None, **({"size": int(size)} if size else {})).eval()
        _, _, ds = _eval_dataset(sources, [args.split], model.input_spec)
        seconds: dict[int, list[float]] = {b: [] for b in batches}
        logits = {}
        for _ in range(args.repeats):
            for b in batches:
                t0 = time.perf_counter()
                logits[b] = predict_logits(model, ds, batch_size=b)
                seconds[b].append(round(time.perf_counter() - t0, 2))
        diff = max(float(np.abs(logits[b] - logits[batches[0]]).max()) for b in batches)
        rows.append({"model": spec, "items": len(ds), "seconds": {str(b): s for b, s in seconds.items()},
                     "max_abs_logit_diff": diff})
        print(f"{spec:<24} {len(ds):>5} items  " + "  ".join(f"batch {b}: {min(s):.2f} s" for b, s in seconds.items())
              + f"  max |logit diff| {diff:.1e}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cache": str(args.cache), "split": args.split, "threads": args.threads,
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

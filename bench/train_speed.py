"""Training step time of frame models on this CPU: contiguous (NCHW) vs channels-last memory layout, and
the whole batch at once vs in micro-batches (``tools/train_default.py --micro-batch``).

    python bench/train_speed.py [--model efficientnet_lite0:224 --model efficientnet_lite0:160] [--steps 6]

One AdamW step (forward, backward, update) on a batch of random crops; the three ways are
interleaved step by step in one sitting so the machine's drift hits them alike; the first step of
each is a warm-up and not timed. Also times scoring (``fak3zer0.train.recipe.predict``) per crop
by batch size, and the self-blend synthesis and augmentation a batch of the
SBI-only recipe needs (half the batch self-blended), so a reader can see where a training step's
time goes. Prints a table and writes bench/results/train_speed.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def step_timer(name: str, size: int, batch: int, channels_last: bool, micro_batch: int | None):
    """A callable doing one training step; returns its seconds."""
    import torch
    from train_default import accumulate

    from fak3zer0.models import create_model
    from fak3zer0.models.inputs import crops_to_tensor

    torch.manual_seed(0)
    model = create_model(name, pretrained=None, size=size).train()
    x = crops_to_tensor(np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
                        model.input_spec)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = (torch.arange(batch) % 2).float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> float:
        t = time.perf_counter()
        opt.zero_grad()
        accumulate(model, x, y, micro_batch)
        opt.step()
        return time.perf_counter() - t

    return step


def synthesis_ms(size: int, batch: int, repeat: int = 3) -> float:
    """Milliseconds to self-blend half a batch and augment all of it (the SBI-only recipe's data work)."""
    from fak3zer0.data.sbi import region_mix
    from fak3zer0.train.recipe import augment

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    s = size / 224
    marks = np.array([[80, 95], [144, 95], [112, 125], [88, 155], [136, 155]], float) * s
    blend = region_mix(0.5)
    t = time.perf_counter()
    for _ in range(repeat):
        for i in range(batch):
            augment(blend(img, marks, rng)[0] if i % 2 else img, rng)
    return (time.perf_counter() - t) / repeat * 1000


def scoring_ms(name: str, size: int, batches=(128, 64, 32, 16), crops: int = 256, repeat: int = 2) -> dict[int, float]:
    """Milliseconds per crop of ``fak3zer0.train.recipe.predict`` (eval mode, no gradients) by batch size;
    the best of ``repeat`` passes, batch sizes interleaved."""
    import torch

    from fak3zer0.models import create_model
    from fak3zer0.train.recipe import predict

    torch.manual_seed(0)
    model = create_model(name, pretrained=None, size=size)
    x = np.random.default_rng(0).integers(0, 256, (crops, size, size, 3), dtype=np.uint8)
    best = {bs: float("inf") for bs in batches}
    for _ in range(repeat):
        for bs in batches:
            t = time.perf_counter()
            predict(model, x, bs=bs)
            best[bs] = min(best[bs], (time.perf_counter() - t) / crops * 1000)
    return {bs: round(ms, 1) for bs, ms in best.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None, metavar="NAME:SIZE",
                    help="registry name and crop size (default: efficientnet_lite0 at 224 and 160 px)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--micro-batch", type=int, default=16, help="piece size of the micro-batched way")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per way (after one warm-up each)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/train_speed.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    micro = args.micro_batch
    ways = {"contiguous": (False, None), "channels_last": (True, None), f"micro_batch_{micro}": (False, micro)}
    rows = []
    print(f"{'model':<22} {'px':>4} {'NCHW ms/step':>13} {'channels-last':>14} {f'micro-batch {micro}':>15} "
          f"{'data ms':>8}")
    for spec in args.model or ["efficientnet_lite0:224", "efficientnet_lite0:160"]:
        name, size = spec.rsplit(":", 1)
        steps = {way: step_timer(name, int(size), args.batch, *how) for way, how in ways.items()}
        times: dict[str, list[float]] = {way: [] for way in ways}
        for i in range(args.steps + 1):
            for way, step in steps.items():
                seconds = step()
                if i:  # the first step of each way warms up
                    times[way].append(seconds)
        row = {"model": name, "size": int(size), "batch": args.batch,
               **{f"{way}_ms": round(float(np.median(t)) * 1000, 1) for way, t in times.items()},
               "synthesis_ms": round(synthesis_ms(int(size), args.batch), 1),
               "scoring_ms_per_crop_by_batch": scoring_ms(name, int(size))}
        rows.append(row)
        print(f"{name:<22} {size:>4} " + " ".join(f"{row[f'{w}_ms']:>{k}.0f}" for w, k in zip(ways, (13, 14, 15)))
              + f" {row['synthesis_ms']:>8.0f}")
    print("\nscoring (recipe.predict), ms per crop by batch size:")
    for row in rows:
        print(f"{row['model']:<22} {row['size']:>4} " + "  ".join(
            f"{bs}: {ms:.1f}" for bs, ms in row["scoring_ms_per_crop_by_batch"].items()))
    report = {"what": __doc__.split("\n")[0], "command": "python bench/train_speed.py " + " ".join(argv or sys.argv[1:]),
              "machine": f"{platform.machine()}, {args.threads} torch threads, torch {torch.__version__}",
              "steps": args.steps, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

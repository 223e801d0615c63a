"""Training step time of frame models on this CPU: contiguous (NCHW) vs channels-last memory layout.

    python bench/train_speed.py [--model efficientnet_lite0:224 --model efficientnet_lite0:160] [--steps 6]

One AdamW step (forward, backward, update) on a batch of random crops, the two layouts interleaved
step by step in one sitting so the machine's drift hits both alike; the first step of each is a
warm-up and not timed. Also times the self-blend synthesis and augmentation a batch of the
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


def step_timer(name: str, size: int, batch: int, channels_last: bool):
    """A callable doing one training step; returns its seconds."""
    import torch
    import torch.nn.functional as F

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
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None, metavar="NAME:SIZE",
                    help="registry name and crop size (default: efficientnet_lite0 at 224 and 160 px)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per layout (after one warm-up each)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/train_speed.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    print(f"{'model':<22} {'px':>4} {'NCHW ms/step':>13} {'channels-last':>14} {'speed-up':>9} {'data ms':>8}")
    for spec in args.model or ["efficientnet_lite0:224", "efficientnet_lite0:160"]:
        name, size = spec.rsplit(":", 1)
        steps = {cl: step_timer(name, int(size), args.batch, cl) for cl in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(args.steps + 1):
            for cl, step in steps.items():
                seconds = step()
                if i:  # the first step of each layout warms up
                    times[cl].append(seconds)
        ms = {cl: float(np.median(t)) * 1000 for cl, t in times.items()}
        row = {"model": name, "size": int(size), "batch": args.batch, "contiguous_ms": round(ms[False], 1),
               "channels_last_ms": round(ms[True], 1), "speedup": round(ms[False] / ms[True], 2),
               "synthesis_ms": round(synthesis_ms(int(size), args.batch), 1)}
        rows.append(row)
        print(f"{name:<22} {size:>4} {row['contiguous_ms']:>13.0f} {row['channels_last_ms']:>14.0f} "
              f"{row['speedup']:>8.2f}x {row['synthesis_ms']:>8.0f}")
    report = {"what": __doc__.split("\n")[0], "command": "python bench/train_speed.py " + " ".join(argv or sys.argv[1:]),
              "machine": f"{platform.machine()}, {args.threads} torch threads, torch {torch.__version__}",
              "steps": args.steps, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

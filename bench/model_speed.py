"""Model inference speed on the CPU: milliseconds per face crop by batch size and memory layout.

    python bench/model_speed.py [--model fak3zer0-default] [--threads 1] [--repeat 8]

Why it exists: on a small CPU the batch size and the activation layout change the cost of a
crop several-fold (big batches fall out of the cache; depthwise convolutions prefer
channels-last). The detector's defaults (``defaults.CPU_BATCH_SIZE``, channels-last for frame
models) were chosen from this table. Each cell is the best of three timings of ``--repeat``
calls, all measured in one run. Where the checkpoint has ONNX twins (``fak3zer0 export``) and ONNX
Runtime is installed, the float32 and 8-bit twins are timed on the same inputs (what ``detect`` uses
on a CPU). Writes bench/results/model_speed.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ms_per_crop(run, x, repeat: int) -> float:
    """Best of three timings of ``repeat`` calls ``run(x)``, in milliseconds per crop."""
    run(x)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            run(x)
        best = min(best, (time.perf_counter() - t0) / repeat / len(x) * 1000)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fak3zer0-default")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1, as in a scan)")
    ap.add_argument("--batches", default="1,4,8,16,64")
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--out", default=str(HERE / "results/model_speed.json"))
    args = ap.parse_args(argv)

    import torch

    from fak3zer0.models.hub import resolve_model
    from fak3zer0.models.ort import load_twin

    torch.set_num_threads(args.threads)
    loaded = resolve_model(args.model)
    model = loaded.model.float().eval()
    spec = model.input_spec
    if spec.kind != "frame":
        raise SystemExit(f"{args.model} takes {spec.kind} inputs; this bench times single-frame models")
    twins = {name: load_twin(loaded.path, loaded.version, args.threads, int8=name == "onnx_int8_ms")
             for name in ("onnx_fp32_ms", "onnx_int8_ms")}
    twins = {name: twin for name, twin in twins.items() if twin is not None}
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    rows = []
    for bs in [int(b) for b in args.batches.split(",")]:
        x = torch.randn(bs, 3, spec.size, spec.size)
        with torch.inference_mode():
            rows.append({"batch": bs, "nchw_ms": round(ms_per_crop(model, x, args.repeat), 2),
                         "channels_last_ms": round(ms_per_crop(last, x.contiguous(memory_format=torch.channels_last),
                                                               args.repeat), 2),
                         **{name: round(ms_per_crop(twin.logits, x.numpy(), args.repeat), 2)
                            for name, twin in twins.items()}})
    print(f"{args.model}: {spec.size} px crops, {args.threads} thread(s), ms per crop (lower is better)")
    print(f"{'batch':>6} {'NCHW':>8} {'channels-last':>14} {'speed-up':>9}"
          + "".join(f" {name[:-3].replace('_', ' '):>10}" for name in twins))
    for r in rows:
        print(f"{r['batch']:>6} {r['nchw_ms']:>8.2f} {r['channels_last_ms']:>14.2f} "
              f"{r['nchw_ms'] / r['channels_last_ms']:>8.2f}x" + "".join(f" {r[name]:>10.2f}" for name in twins))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "size": spec.size, "threads": args.threads,
                               "machine": {"platform": platform.platform(), "torch": torch.__version__},
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

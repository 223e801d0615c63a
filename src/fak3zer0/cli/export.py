"""``fak3zer0 export CHECKPOINT``: write the checkpoint's ONNX twins for fast CPU scoring."""
from __future__ import annotations

import argparse


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export a single-frame model to ONNX (2-5x faster scoring on a CPU)",
                       description="Write CHECKPOINT's ONNX twin (same name, .onnx) stamped with the checkpoint's "
                                   "version, and with --int8 also its 8-bit twin (.int8.onnx). detect, scan and "
                                   "serve then score face crops with ONNX Runtime on the CPU (--backend auto: "
                                   "8-bit twin first); a twin whose stamp does not match the checkpoint is ignored. "
                                   "Needs the onnx package: pip install 'fak3zer0[export]'.",
                       epilog="example: fak3zer0 export runs/x/best.pt --int8 --calibration CACHE",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a .pt checkpoint (a shipped model name is resolved to its file)")
    p.add_argument("--int8", action="store_true",
                   help="also write the 8-bit twin (static quantisation; needs --calibration)")
    p.add_argument("--calibration", metavar="CACHE",
                   help="face-crop cache (fak3zer0 preprocess) whose crops set the 8-bit activation ranges; "
                        "labels are not used")
    p.add_argument("--calibration-crops", type=int, default=512, metavar="N",
                   help="crops taken evenly from the cache (default: 512)")
    p.set_defaults(func=run)
    return p


def calibration_crops(cache_dir: str, n: int, spec):
    """``n`` crops spread evenly over a cache's entries, as model inputs (N, 3, S, S) float32."""
    import numpy as np

    from fak3zer0.data.cache import FaceCropCache, spread_evenly
    from fak3zer0.errors import DatasetError
    from fak3zer0.models.inputs import crops_to_tensor

    cache = FaceCropCache(cache_dir)
    entries = cache.filter()
    if not entries:
        raise DatasetError(f"{cache_dir}: no usable entries for calibration")
    picked = [entries[i] for i in spread_evenly(len(entries), n)]
    per = max(1, -(-n // len(picked)))
    crops = np.concatenate([cache.crops(e, spec.size, per) for e in picked])
    return crops_to_tensor(crops[:n], spec).numpy()


def run(args) -> int:
    from fak3zer0.errors import Fak3Zer0Error, ModelError
    from fak3zer0.models.hub import resolve_model
    from fak3zer0.models.ort import export_onnx, quantize_int8, twin_path

    if args.int8 and not args.calibration:
        raise Fak3Zer0Error("--int8 needs --calibration CACHE: real face crops to measure activation ranges on")
    loaded = resolve_model(args.checkpoint)
    if not loaded.path:
        raise ModelError(f"{args.checkpoint!r} is not a checkpoint file; train or save one first")
    out = export_onnx(loaded.model, twin_path(loaded.path), version=loaded.version)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB, version {loaded.version})")
    if args.int8:
        crops = calibration_crops(args.calibration, args.calibration_crops, loaded.input_spec)
        q, report = quantize_int8(out, crops)
        print(f"{q} ({q.stat().st_size / 1e6:.1f} MB): on {report['crops']} calibration crops the fake probability "
              f"moved by {report['mean_abs_diff']:.3f} on average (max {report['max_abs_diff']:.3f}) vs float32")
    return 0

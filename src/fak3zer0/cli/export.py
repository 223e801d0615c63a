"""``fak3zer0 export CHECKPOINT``: write the checkpoint's ONNX twin for fast CPU scoring."""
from __future__ import annotations

import argparse


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="export a single-frame model to ONNX (about 2x faster scoring on a CPU)",
                       description="Write CHECKPOINT's ONNX twin (same name, .onnx) stamped with the checkpoint's "
                                   "version. detect, scan and serve then score face crops with ONNX Runtime on the "
                                   "CPU (--backend auto); a twin whose stamp does not match the checkpoint is "
                                   "ignored. Needs the onnx package: pip install 'fak3zer0[export]'.")
    p.add_argument("checkpoint", help="a .pt checkpoint (a shipped model name is resolved to its file)")
    p.add_argument("--out", default=None, help="where to write (default: beside the checkpoint, .onnx); "
                                              "a twin is only found beside its checkpoint")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from fak3zer0.errors import ModelError
    from fak3zer0.models.hub import resolve_model
    from fak3zer0.models.ort import export_onnx, twin_path

    loaded = resolve_model(args.checkpoint)
    if not loaded.path:
        raise ModelError(f"{args.checkpoint!r} is not a checkpoint file; train or save one first")
    out = export_onnx(loaded.model, args.out or twin_path(loaded.path), version=loaded.version)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB, version {loaded.version})")
    return 0

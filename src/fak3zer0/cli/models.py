"""``fak3zer0 models``: what architectures are registered and which weights ship."""
from __future__ import annotations

import argparse
import json
import sys

from fak3zer0.cli._common import format_table


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list registered architectures and shipped models",
                       description="List the model registry (architectures with parameter counts, input spec, "
                                   "FLOPs per clip and available pretrained weights) and the trained models "
                                   "shipped inside the package.")
    p.add_argument("pattern", nargs="?", default="*", help="glob on model names, e.g. 'cnn_*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-flops", action="store_true", help="skip FLOP counting (faster)")
    p.set_defaults(func=run)
    return p


def _rows(pattern: str, flops: bool) -> list[dict]:
    try:
        from fak3zer0.models.describe import describe_models
    except ImportError:
        describe_models = None
    if describe_models is not None:
        return describe_models(pattern, flops=flops) if flops is not None else describe_models(pattern)
    from fak3zer0.models import create_model, list_models, model_entry

    rows = []
    for name in list_models(pattern):
        entry = model_entry(name)
        model = create_model(name)
        rows.append({"name": name, "family": entry.family, "description": entry.description,
                     "params": sum(p.numel() for p in model.parameters()),
                     "input_spec": model.input_spec.to_dict(), "flops": None,
                     "weights_available": entry.weights_available()})
    return rows


def _shipped() -> list[dict]:
    from fak3zer0.models.checkpoint import read_checkpoint
    from fak3zer0.models.hub import model_card, shipped_models
    from fak3zer0.models.ort import twin_path

    out = []
    for name, path in shipped_models().items():
        ck = read_checkpoint(path)
        twins = [label for label, int8 in (("onnx", False), ("onnx-int8", True)) if twin_path(path, int8).is_file()]
        card = model_card(name)
        out.append({"name": name, "architecture": ck["model"], "file": str(path), "backends": ["torch"] + twins,
                    "metrics": ck.get("metrics", {}), "temperature": ck.get("calibration", {}).get("temperature"),
                    "description": ck.get("meta", {}).get("description", ""),
                    "card": str(card) if card else None})
    return out


def run(args) -> int:
    try:
        rows = _rows(args.pattern, not args.no_flops)
    except TypeError:
        rows = _rows(args.pattern, None)
    shipped = _shipped()
    if args.json:
        json.dump({"architectures": rows, "shipped": shipped}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    table = []
    for r in rows:
        spec = r["input_spec"]
        shape = {"frame": "frame {s}px", "frames": "{t}x frames {s}px", "clip": "clip {t}x{s}px",
                 "landmarks": "landmarks {t}x{p}"}[spec["kind"]].format(s=spec["size"], t=spec["frames"], p=spec.get("landmarks", 0))
        fl = r.get("flops")
        table.append([r["name"], r["family"], f"{r['params']:,}", shape,
                      "-" if not fl else f"{fl / 1e9:.2f}G", ",".join(r["weights_available"]) or "-"])
    print(format_table(["name", "family", "params", "input", "FLOPs/clip", "weights"], table, "llrlrl"))
    if shipped:
        print("\nshipped models (use with --model NAME):")
        for s in shipped:
            m = s["metrics"]
            shown = [f"{label} {m[k]:.3f}" for k, label in (("test_auc", "held-out AUC"), ("val_auc", "val AUC"))
                     if isinstance(m.get(k), (int, float))]
            print(f"  {s['name']}  ({s['architecture']})" + ("  " + ", ".join(shown) if shown else "")
                  + (f"  - {s['description']}" if s["description"] else ""))
            print(f"      backends: {', '.join(s['backends'])} (--backend; auto picks the last one on a CPU)")
            if s["card"]:
                print(f"      model card (data, measured accuracy, failure modes): {s['card']}")
    return 0

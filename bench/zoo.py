"""Model zoo comparison (issue 5): every model family trained briefly with the same budget and split.

    python bench/zoo.py [--budget small|full|smoke] [--models PATTERN[,PATTERN...]] [--threads 1]
                        [--images /work/cache/dev_images] [--videos /work/cache/dev_videos]
                        [--work-dir runs/zoo] [--out bench/results] [--device cpu|auto|cuda]

Protocol (docs/zoo.md):

* **frame models** train on the DFDC face-crop image cache. Every image gets a split from
  ``group_split(group)`` (80/10/10, seed 0; a real and its fakes share a group, so no group
  straddles splits). The budget takes a fixed seeded subset of the train (and val) crops;
  the test split is always the whole test split. The split is written as an *index view*
  (``WORK/views/...``: ``cache.json`` + ``index.jsonl`` with the split filled in + a
  ``crops`` symlink to the original cache; no crop is copied).
* **video models** (``frames``, ``clip``, ``landmarks``) train on the video cache with its own
  grouped splits (manifest reader), T = 8 crops (or landmark sets) of one face track per input.
* Every row trains with :func:`fak3zer0.train.trainer.train` (best epoch by val video AUC,
  temperature and aggregation fitted on val) and is scored once on the test split with
  :func:`fak3zer0.evaluate.runner.evaluate`. Frame models are also scored on the video
  test split (cross-domain: they never saw a video). Nothing is tuned on a test split.
* CPU ms per clip: one input of the model's spec at batch 1 with ``--threads`` threads,
  median of 7 runs after 2 warm-ups; GPU ms the same on CUDA when available (else "-").

Writes ``OUT/zoo.json`` and ``OUT/zoo.md`` (date, exact command, machine, table) and prints the table.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# ---------------------------------------------------------------- what is compared

#: One row of the leaderboard: a registered model with its CPU-sized options.
#: ``group`` picks the data (``frame``: image cache; otherwise the video cache);
#: ``kwargs`` / ``kwargs_<budget>`` are builder options (the budget's win).
ROWS: list[dict[str, Any]] = [
    # frame models: one face crop. Meso's pooling needs a multiple of 32 (128 instead of 112).
    {"id": "meso4", "model": "meso4", "group": "frame", "kwargs": {"size": 128}},
    {"id": "meso_inception4", "model": "meso_inception4", "group": "frame", "kwargs": {"size": 128}},
    {"id": "small_cnn", "model": "small_cnn", "group": "frame", "kwargs": {"size": 112}},
    {"id": "efficientnet_lite0-imagenet", "model": "efficientnet_lite0", "group": "frame", "pretrained": "imagenet",
     "kwargs": {"size": 112}},
    {"id": "efficientnet_lite0-scratch", "model": "efficientnet_lite0", "group": "frame", "kwargs": {"size": 112}},
    # CNN per frame + sequence head: T crops of one track
    {"id": "cnn_lstm", "model": "cnn_lstm", "group": "video", "kwargs": {"size": 112}},
    {"id": "cnn_gru", "model": "cnn_gru", "group": "video", "kwargs": {"size": 112}},
    {"id": "cnn_bilstm", "model": "cnn_bilstm", "group": "video", "kwargs": {"size": 112}},
    {"id": "cnn_bigru", "model": "cnn_bigru", "group": "video", "kwargs": {"size": 112}},
    {"id": "cnn_transformer", "model": "cnn_transformer", "group": "video", "kwargs": {"size": 112}},
    # 3D CNNs on a clip
    {"id": "c3d", "model": "c3d", "group": "video", "kwargs": {"size": 112}},
    {"id": "i3d", "model": "i3d", "group": "video", "kwargs": {"size": 112}},
    {"id": "i3d_lite0-imagenet", "model": "i3d_lite0", "group": "video", "pretrained": "imagenet",
     "kwargs": {"size": 112}, "kwargs_small": {"size": 64}},  # inflated EfficientNet: ~5x c3d's cost per clip
    {"id": "r2plus1d", "model": "r2plus1d", "group": "video", "kwargs": {"size": 112},
     "kwargs_small": {"size": 112, "widths": [8, 16, 32, 64]}},
    {"id": "c3d_gru", "model": "c3d_gru", "group": "video", "kwargs": {"size": 112}},  # 2 sub-clips of 4 frames
    {"id": "r2plus1d_transformer", "model": "r2plus1d_transformer", "group": "video", "kwargs": {"size": 112}},
    # ST-GCN on the five MTCNN landmarks of a track
    {"id": "stgcn", "model": "stgcn", "group": "video", "kwargs": {}},
    {"id": "stgcn_2s", "model": "stgcn_2s", "group": "video", "kwargs": {}},
]

#: Training budgets. Same budget for every row of a data group: same inputs, epochs, batch, optimiser.
BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"frame": {"train_crops": 2000, "val_crops": 500, "epochs": 1, "batch_size": 32},
              "video": {"frames": 8, "epochs": 2, "batch_size": 16}},
    "full": {"frame": {"train_crops": None, "val_crops": None, "epochs": 3, "batch_size": 32},
             "video": {"frames": 8, "epochs": 8, "batch_size": 16}},
    # plumbing check only (seconds per row); its numbers mean nothing
    "smoke": {"frame": {"train_crops": 64, "val_crops": 32, "epochs": 1, "batch_size": 16, "test_crops": 64},
              "video": {"frames": 8, "epochs": 1, "batch_size": 8}},
}
#: Shared by every row (no per-model tuning): AdamW 1e-3, cosine, default augmentations.
COMMON = {
    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
    "sched": {"name": "cosine", "warmup_epochs": 0.0, "min_lr_ratio": 0.01},
    "train": {"seed": 0, "num_workers": 0, "grad_clip": 5.0, "balance": "none", "select": "video_auc",
              "calibrate": True},
}
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0
SUBSET_SEED = 0
LATENCY_RUNS, LATENCY_WARMUP = 7, 2
BOOTSTRAP = 2000


def row_kwargs(row: dict, budget: str) -> dict:
    return dict(row.get(f"kwargs_{budget}", row.get("kwargs", {})))


def select_rows(patterns: str | None) -> list[dict]:
    if not patterns:
        return list(ROWS)
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    out = [r for r in ROWS if any(fnmatch.fnmatch(r["id"], p) or fnmatch.fnmatch(r["model"], p) for p in pats)]
    if not out:
        raise SystemExit(f"--models {patterns!r} matches no row; rows: {', '.join(r['id'] for r in ROWS)}")
    return out


# ---------------------------------------------------------------- data

def read_index_lines(cache: Path) -> list[dict]:
    from fak3zer0.data.cache import read_index

    return list(read_index(cache / "index.jsonl").values())


def make_image_view(cache: Path, view: Path, budget: dict) -> dict:
    """Index view of the image cache with grouped train/val/test splits and the budget's subsets."""
    from fak3zer0.data.splits import group_split

    entries = [e for e in read_index_lines(cache) if e.get("status") == "ok" and e.get("file")]
    by_split: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for e in entries:
        by_split[group_split(e["group"], SPLIT_FRACTIONS, SPLIT_SEED)].append(e)
    rng = np.random.default_rng(SUBSET_SEED)
    chosen: dict[str, list[dict]] = {}
    for split, cap in (("train", budget.get("train_crops")), ("val", budget.get("val_crops")),
                       ("test", budget.get("test_crops"))):
        rows = by_split[split]
        if cap is not None and len(rows) > cap:
            keep = np.sort(rng.choice(len(rows), size=cap, replace=False))
            rows = [rows[i] for i in keep]
        chosen[split] = rows
    groups = {s: {e["group"] for e in rows} for s, rows in chosen.items()}
    assert not (groups["train"] & groups["test"]) and not (groups["val"] & groups["test"]) \
        and not (groups["train"] & groups["val"]), "a group straddles splits"
    view.mkdir(parents=True, exist_ok=True)
    meta = json.loads((cache / "cache.json").read_text())
    meta["view_of"] = str(cache.resolve())
    meta["view"] = {"split": f"group_split{SPLIT_FRACTIONS} seed {SPLIT_SEED}", "subset_seed": SUBSET_SEED,
                    **{f"{s}_entries": len(r) for s, r in chosen.items()}}
    (view / "cache.json").write_text(json.dumps(meta, indent=2))
    tmp = view / "index.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for split in ("train", "val", "test"):
            for e in chosen[split]:
                fh.write(json.dumps(dict(e, split=split)) + "\n")
    os.replace(tmp, view / "index.jsonl")
    link = view / "crops"
    if (link.is_symlink() or link.exists()) and link.resolve() != (cache / "crops").resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to((cache / "crops").resolve(), target_is_directory=True)
    return {s: {"entries": len(r), "real": sum(1 for e in r if int(e["label"]) == 0),
                "fake": sum(1 for e in r if int(e["label"]) == 1), "groups": len(groups[s])}
            for s, r in chosen.items()}


def cache_in_progress(cache: Path) -> bool:
    """True while a ``preprocess`` run holds the cache's advisory lock (``fak3zer0.data.cache``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    if not (cache / ".lock").exists():
        return False
    with open(cache / ".lock") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


def video_split_counts(cache: Path) -> dict:
    out: dict[str, dict[str, int]] = {}
    groups: dict[str, set] = {}
    for e in read_index_lines(cache):
        if e.get("status") != "ok":
            continue
        s = e.get("split") or "train"
        d = out.setdefault(s, {"entries": 0, "real": 0, "fake": 0})
        d["entries"] += 1
        d["fake" if int(e["label"]) else "real"] += 1
        groups.setdefault(s, set()).add(e.get("group"))
    for s, d in out.items():
        d["groups"] = len(groups[s])
    if any(groups[a] & groups[b] for a in groups for b in groups if a < b):
        raise SystemExit(f"{cache}: a leakage group is in several splits; re-split it by group first")
    return out


# ---------------------------------------------------------------- measurements

def bootstrap_auc(labels: np.ndarray, probs: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> list[float] | None:
    """95% percentile interval of the AUC over videos resampled with replacement."""
    from fak3zer0.evaluate.metrics import roc_auc

    if len(set(labels.tolist())) < 2:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(labels), len(labels))
        a = roc_auc(labels[i], probs[i])
        if a is not None:
            vals.append(a)
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))] if vals else None


def read_videos_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return (np.array([int(r["label"]) for r in rows], dtype=np.int64),
            np.array([float(r["fake_probability"]) for r in rows]))


def evaluate_on(run_dir: Path, source: dict, out_dir: Path, device: str) -> dict:
    from fak3zer0.evaluate.runner import evaluate

    res = evaluate(run_dir, [source], splits=["test"], out_dir=out_dir, device=device, plots=False)
    y, p = read_videos_csv(Path(res["files"]["videos"]))
    v, f = res["video"], res["frame"]
    return {"video_auc": v["auc"], "video_auc_ci95": bootstrap_auc(y, p), "video_log_loss": v["log_loss"],
            "video_ap": v["ap"], "video_balanced_accuracy": v["balanced_accuracy"], "videos": v["n"],
            "frame_auc": f["auc"], "frame_log_loss": f["log_loss"], "inputs": f["n"],
            "counts": res["counts"], "aggregation": res["aggregation"], "temperature": res["temperature"],
            "eval_seconds": res["seconds"], "metrics_json": res["files"].get("json")}


def latency_ms(model, spec, device: str, runs: int = LATENCY_RUNS, warmup: int = LATENCY_WARMUP) -> float:
    import torch

    from fak3zer0.models.describe import dummy_input

    model = model.to(device).eval()
    x = dummy_input(spec, 1, device=device, generator=None)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    with torch.inference_mode():
        for k in range(warmup + runs):
            sync()
            t0 = time.perf_counter()
            model(x)
            sync()
            if k >= warmup:
                times.append((time.perf_counter() - t0) * 1000.0)
    model.to("cpu")
    return float(statistics.median(times))


def describe_input(spec) -> str:
    if spec.kind == "frame":
        return f"frame {spec.size}px"
    if spec.kind == "landmarks":
        return f"{spec.frames}x{spec.landmarks} landmarks"
    return f"{spec.kind} {spec.frames}x{spec.size}px"


# ---------------------------------------------------------------- one row

def run_row(row: dict, args, budget_name: str, sources: dict, work: Path) -> dict:
    import torch

    from fak3zer0.evaluate.runner import load_model
    from fak3zer0.models.describe import count_flops, dummy_input
    from fak3zer0.models.registry import model_entry
    from fak3zer0.train.trainer import train

    group = row["group"]
    b = BUDGETS[budget_name][group]
    cfg: dict[str, Any] = {
        "model": {"name": row["model"], "pretrained": row.get("pretrained"), "kwargs": row_kwargs(row, budget_name)},
        "data": {"sources": [sources[group]], "train_splits": ["train"], "val_splits": ["val"],
                 "preload": True, "frames": b.get("frames") if group == "video" else None},
        "optim": dict(COMMON["optim"]),
        "sched": dict(COMMON["sched"]),
        "train": dict(COMMON["train"], epochs=b["epochs"], batch_size=b["batch_size"], threads=args.threads,
                      device=args.device),
        "output": {"dir": str(work / "runs" / budget_name), "name": row["id"], "overwrite": True},
    }
    print(f"[{time.strftime('%H:%M:%S')}] {row['id']}: training ({group} data, {b['epochs']} epoch(s))", flush=True)
    t0 = time.perf_counter()
    run_dir = train(cfg)
    train_s = time.perf_counter() - t0
    with open(run_dir / "metrics.csv", encoding="utf-8") as fh:
        hist = list(csv.DictReader(fh))
    calib = json.loads((run_dir / "calibration.json").read_text()) if (run_dir / "calibration.json").exists() else {}

    out: dict[str, Any] = {"id": row["id"], "model": row["model"], "pretrained": row.get("pretrained") or "scratch",
                           "family": model_entry(row["model"]).family, "data_group": group,
                           "kwargs": row_kwargs(row, budget_name), "run_dir": str(run_dir),
                           "train_seconds": round(train_s, 1), "epochs": b["epochs"], "batch_size": b["batch_size"],
                           "epoch_seconds": [float(h["seconds"]) for h in hist],
                           "train_inputs": _train_inputs(run_dir / "train.log"),
                           "history": [{k: _num(v) for k, v in h.items()} for h in hist],
                           "temperature": calib.get("temperature"), "aggregation": calib.get("aggregation")}
    t1 = time.perf_counter()
    evals = {}
    if group == "frame":
        evals["images"] = evaluate_on(run_dir, sources["frame"], work / "eval" / budget_name / row["id"] / "images",
                                      args.device)
    if sources.get("video") is not None:
        evals["videos"] = evaluate_on(run_dir, sources["video"], work / "eval" / budget_name / row["id"] / "videos",
                                      args.device)
    out["test"] = evals
    out["eval_seconds"] = round(time.perf_counter() - t1, 1)

    loaded = load_model(run_dir)
    model, spec = loaded.model.eval(), loaded.model.input_spec
    val = (loaded.metrics or {}).get("val") or {}
    out["best_epoch"] = loaded.meta.get("epoch")
    out["val_best_epoch"] = {"frame_auc": (val.get("frame") or {}).get("auc"),
                             "video_auc": (val.get("video") or {}).get("auc")}
    out["input"] = describe_input(spec)
    out["input_spec"] = spec.to_dict()
    out["params"] = int(sum(p.numel() for p in model.parameters()))
    with torch.no_grad():
        out["gflops"] = round(count_flops(model, dummy_input(spec, 1)) / 1e9, 4)
    out["cpu_ms"] = round(latency_ms(model, spec, "cpu"), 2)
    out["gpu_ms"] = round(latency_ms(model, spec, "cuda"), 2) if torch.cuda.is_available() else None
    main = evals.get("images") if group == "frame" else evals.get("videos")
    print(f"[{time.strftime('%H:%M:%S')}] {row['id']}: train {train_s:.0f}s, test AUC "
          f"{_fmt(main and main['video_auc'])}, CPU {out['cpu_ms']:.1f} ms/clip", flush=True)
    return out


def _num(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _train_inputs(log_path: Path) -> int | None:
    """Training inputs per epoch, from the trainer's log line ``train: N inputs (...)``."""
    import re

    if not log_path.is_file():
        return None
    found = re.findall(r"train: (\d+) inputs", log_path.read_text(encoding="utf-8", errors="replace"))
    return int(found[-1]) if found else None


# ---------------------------------------------------------------- report

def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def _auc_ci(m: dict | None) -> str:
    if not m or m.get("video_auc") is None:
        return "-"
    ci = m.get("video_auc_ci95")
    return f"{m['video_auc']:.3f}" + (f" [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else "")


def markdown_table(results: list[dict]) -> str:
    head = ["model", "family", "input", "params", "GFLOPs", "trained on", "val AUC", "image AUC", "image log loss",
            "video AUC [95% CI]", "video log loss", "frame AUC", "train s", "CPU ms/clip", "GPU ms/clip"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 or i == 5 else "---:"
                                                           for i in range(len(head))) + "|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['id']} | error: {r['error']} |" + " |" * (len(head) - 2))
            continue
        im, vi = r["test"].get("images"), r["test"].get("videos")
        name = r["id"] if r["pretrained"] == "scratch" or r["id"].endswith(r["pretrained"]) else \
            f"{r['id']} ({r['pretrained']})"
        video_auc = _auc_ci(vi)
        if r["data_group"] == "frame" and vi:
            video_auc += " *"
        lines.append("| " + " | ".join([
            name, r["family"], r["input"], _params(r["params"]), _fmt(r["gflops"], 3),
            "images" if r["data_group"] == "frame" else "videos",
            _fmt((r.get("val_best_epoch") or {}).get("video_auc")),
            _auc_ci(im) if im else "-", _fmt(im and im["video_log_loss"]),
            video_auc, _fmt(vi and vi["video_log_loss"]), _fmt(vi and vi["frame_auc"]),
            f"{r['train_seconds']:.0f}", _fmt(r["cpu_ms"], 1), _fmt(r["gpu_ms"], 2),
        ]) + " |")
    return "\n".join(lines)


def data_lines(report: dict) -> list[str]:
    out = []
    for name, d in report["data"].items():
        if d is None:
            continue
        parts = ", ".join(f"{s}: {c['entries']} ({c['real']} real / {c['fake']} fake, {c['groups']} groups)"
                          for s, c in d["splits"].items())
        out.append(f"- {name}: `{d['cache']}` — {parts}")
    return out


def write_report(report: dict, out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(report["results"])
    b = report["budget"]
    md = [
        "# Model zoo comparison (issue 5)",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}`",
        (f"- wall time: {report['wall_seconds'] / 60:.1f} min; machine: {report['machine']['cpu']} "
        f"({report['machine']['cpus']} CPUs, load average {report['machine']['load_start']} at start, "
        f"{report['machine']['load_end']} at the end), torch {report['machine']['torch']}, "
        f"{report['threads']} thread(s), device `{report['device']}`, CUDA: {report['machine']['cuda']}"),
        (f"- budget `{report['budget_name']}`: frame models {b['frame']['epochs']} epoch(s) on "
        f"{b['frame']['train_crops'] or 'all'} train crops (val {b['frame']['val_crops'] or 'all'}), batch "
        f"{b['frame']['batch_size']}; video models {b['video']['epochs']} epoch(s), T = {b['video']['frames']}, "
        f"batch {b['video']['batch_size']}; AdamW lr 1e-3, cosine, default augmentations, seed 0, no per-model tuning"),
        *data_lines(report),
        "",
        table,
        "",
        ("val AUC: video AUC of the selected epoch on the val split (used for selection and calibration, "
        "so optimistic). image AUC / log loss: test split of the image cache (one crop per image, so frame = video level). "
        "video AUC / log loss: test split of the video cache (per face track aggregated with the rule picked on "
        "val, most suspicious face); 95% CI = bootstrap over videos. frame AUC: per model input on the video "
        "test split (a crop for frame models, an 8-frame window for the others). "
        "\\* frame models never saw a video: their video column is a cross-domain score. "
        "Log loss after the temperature fitted on val. CPU/GPU ms: one input at batch 1, median of "
        f"{LATENCY_RUNS} runs, {report['threads']} thread(s), on a shared machine (noisy). "
        "See docs/zoo.md for the protocol and its limits."),
        "",
    ]
    text = "\n".join(md)
    (out_dir / "zoo.md").write_text(text, encoding="utf-8")
    (out_dir / "zoo.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return table


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    ap.add_argument("--models", default=None, help="comma-separated globs over row ids / model names")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=Path, default=Path("/work/cache/dev_images"), help="image face-crop cache")
    ap.add_argument("--videos", type=Path, default=Path("/work/cache/dev_videos"), help="video face-crop cache")
    ap.add_argument("--work-dir", type=Path, default=REPO / "runs" / "zoo", help="run folders, views, evaluations")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="where zoo.json / zoo.md go")
    ap.add_argument("--render", type=Path, default=None,
                    help="only rewrite OUT/zoo.md (and print the table) from an existing zoo.json")
    ap.add_argument("--device", default="cpu", help="training/evaluation device (latency is timed on CPU and, "
                                                     "when available, CUDA regardless)")
    args = ap.parse_args(argv)

    if args.render is not None:
        report = json.loads(args.render.read_text(encoding="utf-8"))
        print(write_report(report, args.out))
        return 0

    import logging

    import torch

    logging.getLogger("fak3zer0").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    command = "python bench/zoo.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rows = select_rows(args.models)
    budget = BUDGETS[args.budget]
    work = args.work_dir.resolve()
    t_start = time.perf_counter()
    load_start = _load()

    sources: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if any(r["group"] == "frame" for r in rows):
        view = work / "views" / f"dev_images-{args.budget}"
        data["images"] = {"cache": str(args.images), "view": str(view),
                          "splits": make_image_view(args.images, view, budget["frame"])}
        sources["frame"] = {"cache": str(view), "name": "dev_images"}
    if (args.videos / "index.jsonl").is_file():
        data["videos"] = {"cache": str(args.videos), "splits": video_split_counts(args.videos)}
        if data["videos"]["splits"].get("test", {}).get("entries"):
            sources["video"] = {"cache": str(args.videos), "name": "dev_videos"}
        if cache_in_progress(args.videos):
            print(f"WARNING: {args.videos} is still being written by preprocess: the video set is partial",
                  file=sys.stderr)
            data["videos"]["partial"] = True
    elif any(r["group"] == "video" for r in rows):
        raise SystemExit(f"no video cache at {args.videos} (index.jsonl missing)")
    for name, d in data.items():
        print(f"{name}: " + ", ".join(f"{s} {c['entries']} ({c['real']}r/{c['fake']}f)" for s, c in d["splits"].items()))

    results = []
    for row in rows:
        try:
            results.append(run_row(row, args, args.budget, sources, work))
        except Exception as exc:  # noqa: BLE001 - one broken row must not lose the others
            import traceback

            traceback.print_exc()
            results.append({"id": row["id"], "model": row["model"], "error": f"{type(exc).__name__}: {exc}"})

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": command,
        "budget_name": args.budget,
        "budget": budget,
        "common": COMMON,
        "split": {"images": f"group_split{SPLIT_FRACTIONS} seed {SPLIT_SEED}, subsets seed {SUBSET_SEED}",
                  "videos": "the cache's own splits (manifest reader, grouped)"},
        "threads": args.threads,
        "device": args.device,
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
                    "load_start": load_start, "load_end": _load()},
        "data": data,
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "results": results,
    }
    table = write_report(report, args.out)
    print()
    print(table)
    print(f"\nwall time {report['wall_seconds'] / 60:.1f} min; wrote {args.out / 'zoo.md'} and {args.out / 'zoo.json'}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluation: score face-crop caches with a model, report frame/video metrics, plots, tables.

* :func:`evaluate` -- one model on one or more data sources (pooled, with a per-source
  breakdown); writes ``metrics.json``, ``metrics.md``, ``roc.png``, ``pr.png``, ``hist.png``
  and ``videos.csv`` when given an output folder.
* :func:`cross_dataset_matrix` -- many models x many test sets (``--matrix``): Markdown, CSV, JSON.
* :func:`calibrate` -- fit temperature scaling on validation data and write it into a checkpoint.
* :func:`evaluate_from_cli` -- what ``fak3zer0 evaluate`` calls.

Frame level = one row per model input (a crop for frame models, a window for temporal
ones); video level = the Detector's rule (per face track aggregate, then the most
suspicious face), for the checkpoint's aggregation rule and the alternatives.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fak3zer0.errors import DatasetError, ModelError
from fak3zer0.evaluate.metrics import (
    AGGREGATION_RULES,
    METRIC_KEYS,
    ROBUST_RULE,
    fit_temperature,
    pr_curve,
    roc_curve,
    sigmoid,
)
from fak3zer0.evaluate.scoring import plain, predict_logits, resolve_device, summarise, video_scores
from fak3zer0.models.checkpoint import LoadedModel, atomic_torch_save, model_from_checkpoint, read_checkpoint
from fak3zer0.train.data import ArrayStore, CacheDataset, CacheSource, build_items, open_sources, select_entries

TABLE_METRICS = ("auc", "log_loss", "eer", "ap", "accuracy", "balanced_accuracy", "ece", "n")


# ---------------------------------------------------------------- model / data resolution

def _checkpoint_path(spec: str | Path) -> Path | None:
    p = Path(spec).expanduser()
    if p.is_dir() and (p / "best.pt").is_file():
        return p / "best.pt"
    if p.is_file():
        return p
    return None


def load_model(spec: str | Path) -> LoadedModel:
    """A checkpoint path, a run folder (its ``best.pt``), a shipped name or ``arch:weights``."""
    from fak3zer0.models.hub import resolve_model

    path = _checkpoint_path(spec)
    return resolve_model(str(path) if path else str(spec))


def model_label(spec: str | Path) -> str:
    """Short row label: run folder name for ``RUN/best.pt`` or a run folder, else the file stem / name."""
    p = Path(spec)
    path = _checkpoint_path(spec)
    if path is None:
        return str(spec)
    if path.name in ("best.pt", "last.pt"):
        return path.parent.name + ("" if path.name == "best.pt" else f"/{path.stem}")
    return p.stem


def _sources(data: Sequence[Any] | Any, layout: str | None, out_dir: Path | None, frames: int) -> list[CacheSource]:
    if isinstance(data, (str, Path, dict, CacheSource)):
        data = [data]
    ready = [d for d in data if isinstance(d, CacheSource)]
    if ready and len(ready) == len(data):
        return list(data)
    opened = open_sources([d for d in data if not isinstance(d, CacheSource)], layout=layout, work_dir=out_dir,
                          frames=frames)
    it = iter(opened)
    return [d if isinstance(d, CacheSource) else next(it) for d in data]


def _eval_dataset(sources: list[CacheSource], splits: Sequence[str] | None, spec):
    """``(keys, items, dataset)``: the model inputs (no augmentation) of the sources' entries in
    ``splits``; ``keys`` is empty (and the rest None) when there are none."""
    keys = [(si, i) for si, s in enumerate(sources) for i in select_entries(s, splits)]
    if not keys:
        return keys, None, None
    store = ArrayStore(sources, spec.size, need_crops=spec.kind != "landmarks", preload=False, keys=keys)
    items = build_items(store, keys, spec)
    return keys, items, CacheDataset(store, items, spec, train=False)


# ---------------------------------------------------------------- evaluate

def evaluate(
    checkpoint_or_name: str | Path | LoadedModel,
    data_sources: Sequence[Any] | Any,
    *,
    layout: str | None = None,
    splits: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    rules: Sequence[str] = ("mean", ROBUST_RULE),
    num_workers: int = 0,
    preprocess_frames: int = 32,
    plots: bool = True,
) -> dict[str, Any]:
    """Score data sources with a model and return frame- and video-level metrics.

    Args:
        checkpoint_or_name: checkpoint path, run folder, shipped model name, ``arch:weights``
            or an already loaded :class:`LoadedModel`.
        data_sources: cache folders (or dataset folders with ``layout``, cached first into
            ``out_dir/caches``), or dicts as in ``data.sources`` of a training config.
        splits: only entries of these splits (``None``: all entries).
        out_dir: where to write metrics.json / metrics.md / roc.png / pr.png / hist.png /
            videos.csv; ``None`` writes nothing.
        rules: video aggregation rules to report besides the model's own.

    Returns:
        ``{"model", "temperature", "aggregation", "threshold", "data", "counts",
        "frame": metrics, "video": metrics (model's rule), "video_by_rule": {rule: metrics},
        "by_source": {name: {"frame", "video"}} (several sources), "out_dir", "files"}``;
        each metrics dict has the keys of :func:`fak3zer0.evaluate.metrics.compute_metrics`.
    """
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    loaded = checkpoint_or_name if isinstance(checkpoint_or_name, LoadedModel) else load_model(checkpoint_or_name)
    if isinstance(checkpoint_or_name, LoadedModel):
        label = model_label(loaded.source) if loaded.source else loaded.name
    else:
        label = model_label(checkpoint_or_name)
    dev = resolve_device(device)
    model = loaded.model.to(dev).eval()
    spec = model.input_spec
    sources = _sources(data_sources, layout, out, preprocess_frames)
    keys, items, ds = _eval_dataset(sources, splits, spec)
    if not keys:
        raise DatasetError(f"no usable entries (status ok{'' if splits is None else f', splits {list(splits)}'}) "
                           f"in {[str(s.root) for s in sources]}")
    logits = predict_logits(model, ds, batch_size=batch_size, device=dev, num_workers=num_workers)
    rule = loaded.aggregation if loaded.aggregation in AGGREGATION_RULES else "mean"
    kw = dict(temperature=loaded.temperature, threshold=loaded.threshold, rule=rule, rules=rules)
    summary = summarise(sources, items, logits, **kw)
    result: dict[str, Any] = {
        "model": label,
        "architecture": loaded.name,
        "input_spec": spec.to_dict(),
        "temperature": loaded.temperature,
        "aggregation": rule,
        "threshold": loaded.threshold,
        "splits": list(splits) if splits is not None else None,
        "data": [s.describe() for s in sources],
        "counts": _counts(sources, keys, items, splits),
        **summary,
    }
    if len(sources) > 1:
        result["by_source"] = {}
        for si, s in enumerate(sources):
            sel = [j for j, it in enumerate(items) if it.src == si]
            if sel:
                sub = summarise(sources, [items[j] for j in sel], logits[sel], **kw)
                result["by_source"][s.name] = {"frame": sub["frame"], "video": sub["video"]}
    result["seconds"] = round(time.perf_counter() - t0, 3)
    result["out_dir"] = str(out) if out is not None else None
    result["files"] = {}
    if out is not None:
        probs = sigmoid(logits / loaded.temperature)
        result["files"] = write_report(result, sources, items, probs, out, plots=plots)
    return result


def _counts(sources: Sequence[CacheSource], keys, items, splits: Sequence[str] | None) -> dict[str, int]:
    status: dict[str, int] = {}
    for s in sources:
        for e in s.skipped:
            if splits is None or e.split in splits:
                status[e.status] = status.get(e.status, 0) + 1
    vids = {(sources[si].name, sources[si].entries[i].video_id): sources[si].entries[i].label for si, i in keys}
    return {
        "entries_ok": len(keys),
        "entries_no_face": status.get("no_face", 0),
        "entries_error": status.get("error", 0),
        "inputs": len(items),
        "videos": len(vids),
        "real_videos": sum(1 for v in vids.values() if v == 0),
        "fake_videos": sum(1 for v in vids.values() if v == 1),
    }


# ---------------------------------------------------------------- reports

def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def report_markdown(result: dict[str, Any]) -> str:
    """A human-readable Markdown summary of :func:`evaluate`'s result."""
    c = result["counts"]
    lines = [
        f"# Evaluation of `{result['model']}`",
        "",
        f"- data: {', '.join(d['name'] for d in result['data'])}"
        + (f" (splits {', '.join(result['splits'])})" if result.get("splits") else ""),
        f"- {c['videos']} videos ({c['real_videos']} real, {c['fake_videos']} fake), {c['inputs']} model inputs; "
        f"skipped: {c['entries_no_face']} without a face, {c['entries_error']} unreadable",
        f"- temperature {result['temperature']:.3f}, aggregation `{result['aggregation']}`, "
        f"threshold {result['threshold']:.2f}",
        "",
        "| level | " + " | ".join(TABLE_METRICS) + " |",
        "|---|" + "---|" * len(TABLE_METRICS),
    ]
    rows = [("frame", result["frame"])] + [(f"video ({r})", m) for r, m in result["video_by_rule"].items()]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in TABLE_METRICS) + " |")
    for name, m in rows:
        if m.get("note"):
            lines.append(f"\nNote ({name}): {m['note']}")
    if result.get("by_source"):
        lines += ["", "## Per source", "", "| source | frame AUC | video AUC | video log loss | videos |",
                  "|---|---|---|---|---|"]
        for name, m in result["by_source"].items():
            lines.append(f"| {name} | {_fmt(m['frame']['auc'])} | {_fmt(m['video']['auc'])} | "
                         f"{_fmt(m['video']['log_loss'])} | {m['video']['n']} |")
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], sources, items, probs: np.ndarray, out: Path, *,
                 plots: bool = True) -> dict[str, str]:
    from fak3zer0.evaluate.plots import plot_histograms, plot_pr, plot_roc

    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "metrics.json", "markdown": out / "metrics.md", "videos": out / "videos.csv"}
    y = np.array([it.label for it in items], dtype=np.int64)
    vkeys, vp, vy = video_scores(sources, items, probs, result["aggregation"])
    with open(files["videos"], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "video_id", "label", "fake_probability"])
        for (src, vid), p, lab in zip(vkeys, vp, vy):
            w.writerow([src, vid, int(lab), f"{p:.10g}"])  # 6 decimals turned near-ties into ties
    if plots:
        roc, pr = {}, {}
        for name, (ly, lp, m) in {"frame": (y, probs, result["frame"]),
                                  f"video ({result['aggregation']})": (vy, vp, result["video"])}.items():
            if m["auc"] is not None:
                fpr, tpr, _ = roc_curve(ly, lp)
                prec, rec, _ = pr_curve(ly, lp)
                roc[name], pr[name] = (fpr, tpr, m["auc"]), (prec, rec, m["ap"])
        files["roc"] = plot_roc(roc, out / "roc.png", title=f"ROC — {result['model']}")
        files["pr"] = plot_pr(pr, out / "pr.png")
        files["hist"] = plot_histograms({"frame": (y, probs), "video": (vy, vp)}, out / "hist.png",
                                        threshold=result["threshold"])
    files_s = {k: str(v) for k, v in files.items()}
    result = dict(result, files=files_s)
    files["markdown"].write_text(report_markdown(result), encoding="utf-8")
    files["json"].write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return files_s


# ---------------------------------------------------------------- cross-dataset matrix

def cross_dataset_matrix(
    models: Sequence[str | Path],
    data_sources: Sequence[Any],
    *,
    layout: str | None = None,
    splits: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    preprocess_frames: int = 32,
) -> dict[str, Any]:
    """Rows = models (training runs / checkpoints), columns = test sets; every cell a full evaluation.

    Writes ``matrix.md`` (video AUC, frame AUC and video log-loss tables), ``matrix.csv``
    (one line per model x test set x level with every metric) and ``matrix.json``.
    """
    out = Path(out_dir) if out_dir is not None else None
    sources = _sources(list(data_sources), layout, out, preprocess_frames)
    rows = [model_label(m) for m in models]
    cols = [s.name for s in sources]
    cells: dict[str, dict[str, Any]] = {}
    for m, r in zip(models, rows):
        loaded = load_model(m)
        cells[r] = {}
        for s in sources:
            try:
                res = evaluate(loaded, [s], splits=splits, batch_size=batch_size, device=device)
                cells[r][s.name] = {"frame": res["frame"], "video": res["video"], "counts": res["counts"]}
            except DatasetError as exc:
                cells[r][s.name] = {"error": str(exc)}
    matrix = {"rows": rows, "columns": cols, "models": [str(m) for m in models], "cells": cells,
              "splits": list(splits) if splits is not None else None}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "matrix.json").write_text(json.dumps(matrix, indent=2), encoding="utf-8")
        (out / "matrix.md").write_text(matrix_markdown(matrix), encoding="utf-8")
        with open(out / "matrix.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            keys = [k for k in METRIC_KEYS if k != "note"]
            w.writerow(["model", "test_set", "level", *keys])
            for r in rows:
                for c in cols:
                    for level in ("frame", "video"):
                        m = cells[r][c].get(level) or {}
                        w.writerow([r, c, level, *["" if m.get(k) is None else m[k] for k in keys]])
        matrix["files"] = {k: str(out / f"matrix.{k}") for k in ("md", "csv", "json")}
    return matrix


def matrix_markdown(matrix: dict[str, Any]) -> str:
    lines = ["# Cross-dataset evaluation", "", "Rows: models (training runs); columns: test sets.", ""]
    for level, metric, title in (("video", "auc", "Video AUC"), ("frame", "auc", "Frame AUC"),
                                 ("video", "log_loss", "Video log loss")):
        lines += [f"## {title}", "", "| model | " + " | ".join(matrix["columns"]) + " |",
                  "|---|" + "---|" * len(matrix["columns"])]
        for r in matrix["rows"]:
            vals = []
            for c in matrix["columns"]:
                cell = matrix["cells"][r][c]
                vals.append("error" if "error" in cell else _fmt(cell[level].get(metric)))
            lines.append(f"| {r} | " + " | ".join(vals) + " |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- calibration

def calibrate(
    checkpoint: str | Path,
    val_data: Sequence[Any] | Any,
    *,
    layout: str | None = None,
    splits: Sequence[str] | None = ("val",),
    output: str | Path | None = None,
    pick_aggregation: bool = True,
    batch_size: int | None = None,
    device: str = "auto",
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fit temperature scaling on validation data and store it in the checkpoint.

    The temperature minimises the NLL of the raw logits of the model inputs; with
    ``pick_aggregation`` the video rule (mean vs the robust rule) with the lower video log
    loss is stored too. Writes ``output`` (default: the checkpoint itself, atomically).

    Returns ``{"checkpoint", "temperature_before", "temperature", "aggregation", "n_inputs",
    "ece_before", "ece_after", "log_loss_before", "log_loss_after", "video_ece_before",
    "video_ece_after"}`` (frame-level ECE / log loss unless prefixed ``video_``).
    """
    path = _checkpoint_path(checkpoint)
    if path is None:
        raise ModelError(f"calibrate needs a checkpoint file or run folder, not {checkpoint!r}")
    ck = read_checkpoint(path)
    loaded = model_from_checkpoint(ck, source=str(path))
    dev = resolve_device(device)
    model = loaded.model.to(dev).eval()
    spec = model.input_spec
    sources = _sources(val_data, layout, Path(work_dir) if work_dir else path.parent, 32)
    keys, items, ds = _eval_dataset(sources, splits, spec)
    if not keys:
        raise DatasetError(f"no validation entries (splits {list(splits) if splits else 'all'}) in "
                           f"{[str(s.root) for s in sources]}; pass splits=None to use every entry")
    logits = predict_logits(model, ds, batch_size=batch_size, device=dev)
    t_old = loaded.temperature
    t_new = fit_temperature(logits, ds.labels())
    rules = ("mean", ROBUST_RULE)
    old_rule = loaded.aggregation if loaded.aggregation in AGGREGATION_RULES else "mean"
    before = summarise(sources, items, logits, temperature=t_old, rule=old_rule, rules=rules)
    after = summarise(sources, items, logits, temperature=t_new, rule=old_rule, rules=rules)
    rule = old_rule
    if pick_aggregation:
        ll = {r: after["video_by_rule"][r]["log_loss"] for r in rules}
        rule = min(rules, key=lambda r: (math.inf if ll[r] is None else ll[r], rules.index(r)))
    report = {
        "checkpoint": str(Path(output) if output else path),
        "temperature_before": t_old, "temperature": t_new, "aggregation": rule, "n_inputs": len(items),
        "ece_before": before["frame"]["ece"], "ece_after": after["frame"]["ece"],
        "log_loss_before": before["frame"]["log_loss"], "log_loss_after": after["frame"]["log_loss"],
        "video_ece_before": before["video"]["ece"], "video_ece_after": after["video_by_rule"][rule]["ece"],
    }
    ck["calibration"] = plain({"temperature": float(t_new), "fitted_on": [s.describe()["cache"] for s in sources],
                               "ece_before": report["ece_before"], "ece_after": report["ece_after"]})
    ck["aggregation"] = rule
    ck["metrics"] = plain(dict(ck.get("metrics") or {},
                               calibrated={"frame": after["frame"], "video": after["video_by_rule"][rule]}))
    atomic_torch_save(ck, Path(output) if output else path)
    return report


# ---------------------------------------------------------------- CLI entry

def _expand_models(model: str) -> list[str]:
    """``a.pt,b.pt`` or a folder of run folders (each with best.pt) -> list of model specs."""
    out: list[str] = []
    for part in [p.strip() for p in str(model).split(",") if p.strip()]:
        p = Path(part).expanduser()
        if p.is_dir() and not (p / "best.pt").is_file():
            runs = sorted(str(d) for d in p.iterdir() if (d / "best.pt").is_file())
            if not runs:
                raise ModelError(f"{p} holds no run folders with best.pt")
            out += runs
        else:
            out.append(part)
    return out


def evaluate_from_cli(model: str, data: list[str], layout: str | None = None, out: str | None = None,
                      matrix: bool = False, splits: list[str] | None = None) -> dict[str, Any]:
    """Entry point for ``fak3zer0 evaluate MODEL --data D [--data D2 ...] [--layout L] [--out DIR] [--matrix]``.

    Args:
        model: checkpoint path, run folder, shipped model name or ``arch:weights``; with
            ``matrix`` also a comma-separated list, or a folder of run folders.
        data: cache folders (or dataset folders when ``layout`` is given). Pooled into one
            evaluation (with a per-source breakdown); with ``matrix`` each is one column.
        layout: dataset layout for folders that are not caches yet (``fak3zer0.data.readers``);
            they are preprocessed into ``OUT/caches`` first.
        out: output folder (default ``runs/eval/<model>-<time>``).
        matrix: build the cross-dataset table (rows: models, columns: data) instead.
        splits: only cache entries of these splits (e.g. ``["test"]``); default every entry.

    Returns:
        :func:`evaluate`'s result, or :func:`cross_dataset_matrix`'s; both carry ``files``.
    """
    if not data:
        raise DatasetError("give at least one --data folder (a face-crop cache, or a dataset with --layout)")
    models = _expand_models(model) if matrix else [model]
    if out is None:
        stem = "matrix" if matrix else model_label(model).replace("/", "_").replace(":", "_")
        out = str(Path("runs") / "eval" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    if matrix:
        return cross_dataset_matrix(models, data, layout=layout, splits=splits, out_dir=out)
    return evaluate(model, data, layout=layout, splits=splits, out_dir=out)

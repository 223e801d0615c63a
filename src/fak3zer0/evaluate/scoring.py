"""Run a model over cache items and turn its logits into frame- and video-level metrics.

Shared by training (validation each epoch) and evaluation so both measure the same thing.
Video scores mirror :class:`fak3zer0.api.Detector`: every model input sets the score of the
crops it covers, each face track is aggregated with a rule, and a video takes its most
suspicious face.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import torch

from fak3zer0.evaluate.metrics import ROBUST_RULE, aggregate_by_video, compute_metrics, sigmoid
from fak3zer0.errors import ModelError
from fak3zer0.train.data import CacheDataset, CacheSource, Item


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device cuda was asked for but no CUDA GPU is available; use cpu")
    return torch.device(device)


def plain(obj: Any) -> Any:
    """Plain Python types only (no numpy scalars, no TorchVersion): checkpoints must load with weights_only."""
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (tuple, set)):
            return list(o)
        return str(o)

    return json.loads(json.dumps(obj, default=default))


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, dataset: CacheDataset, *, batch_size: int | None = None,
                   device: str | torch.device = "cpu", num_workers: int = 0) -> np.ndarray:
    """Raw fake logits (before temperature), one per dataset item, in item order; ``batch_size`` items a
    call (default: ``defaults.CPU_BATCH_SIZE`` on a CPU, where small batches stay in cache, else
    ``defaults.GPU_BATCH_SIZE``)."""
    from fak3zer0.defaults import CPU_BATCH_SIZE, GPU_BATCH_SIZE

    device = resolve_device(device)
    batch_size = batch_size or (CPU_BATCH_SIZE if device.type == "cpu" else GPU_BATCH_SIZE)
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out = []
    for x, _, _ in loader:
        out.append(model(x.to(device)).float().reshape(-1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def per_crop_scores(sources: Sequence[CacheSource], items: Sequence[Item], probs: np.ndarray
                    ) -> tuple[list[tuple[str, str]], list[int], np.ndarray, np.ndarray]:
    """Expand input scores to crops: ``(video keys, track ids, probs, labels)``, one per crop.

    Synthetic items are skipped (they are not videos). A later input overwrites the score of a
    crop an earlier window already covered, as in the Detector.
    """
    crop_p: dict[tuple[int, int, int], float] = {}
    meta: dict[tuple[int, int, int], tuple[tuple[str, str], int, int]] = {}
    for it, p in zip(items, probs):
        if it.synth:
            continue
        e = sources[it.src].entries[it.entry]
        for c in it.cover:
            k = (it.src, it.entry, c)
            crop_p[k] = float(p)
            meta[k] = ((sources[it.src].name, e.video_id), it.track, e.label)
    keys = list(crop_p)
    return ([meta[k][0] for k in keys], [meta[k][1] for k in keys],
            np.array([crop_p[k] for k in keys]), np.array([meta[k][2] for k in keys], dtype=np.int64))


def video_scores(sources: Sequence[CacheSource], items: Sequence[Item], probs: np.ndarray, rule: str = "mean"):
    """``(video keys, video probs, video labels)``; a key is ``(source name, video_id)``."""
    vids, tracks, p, y = per_crop_scores(sources, items, probs)
    if not vids:
        return [], np.zeros(0), np.zeros(0, dtype=np.int64)
    return aggregate_by_video(vids, p, y, rule=rule, tracks=tracks)


def summarise(sources: Sequence[CacheSource], items: Sequence[Item], logits: np.ndarray, *,
              temperature: float = 1.0, threshold: float = 0.5, rule: str = "mean",
              rules: Sequence[str] = ("mean", ROBUST_RULE)) -> dict[str, Any]:
    """Frame metrics (one row per model input) and video metrics for ``rule`` and each of ``rules``."""
    logits = np.asarray(logits, dtype=np.float64)
    probs = sigmoid(logits / temperature)
    labels = np.array([it.label for it in items], dtype=np.int64)
    out: dict[str, Any] = {"frame": compute_metrics(labels, probs, threshold)}
    by_rule = {}
    for r in dict.fromkeys([rule, *rules]):
        _, vp, vy = video_scores(sources, items, probs, r)
        by_rule[r] = compute_metrics(vy, vp, threshold)
    out["video"] = by_rule[rule]
    out["video_by_rule"] = by_rule
    return out

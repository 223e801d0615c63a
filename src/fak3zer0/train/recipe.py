"""Building blocks of the shipped default model's training recipe (``tools/train_default.py``).

The recipe trains from face-crop caches held in memory (``load_crops``), splits by leakage group with
``recipe_split`` (the split the shipped weights were trained on), augments with ``augment`` and scores
with ``predict``; ``tools/make_ensemble.py``, ``tools/source_cv.py`` and the benchmarks that score the
shipped model on its own val/test split import them from here so they all see the same split.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from fak3zer0.data.cache import spread_evenly
from fak3zer0.defaults import CPU_BATCH_SIZE
from fak3zer0.evaluate.metrics import log_loss, roc_auc, sigmoid
from fak3zer0.models.inputs import crops_to_tensor


def recipe_split(group: str, seed: int = 0, val: float = 0.1, test: float = 0.1) -> str:
    """"train" | "val" | "test" for a leakage group, as the default model's recipe splits.

    Not :func:`fak3zer0.data.splits.group_split` (which caches write): the shipped weights were trained on
    this hash (``sha1("seed:group")``, test first), so every score of them on "val"/"test" must use it.
    """
    h = int(hashlib.sha1(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "val" if h < test + val else "train"


def require_base(base: Path, images: Path) -> None:
    """Stop, naming the command that makes it, when the DFDC-only base checkpoint is missing."""
    if not base.is_file():
        raise SystemExit(f"no DFDC-only base checkpoint at {base}; make it with: python tools/train_default.py "
                         f"--cache {images} --size 160 --epochs 3 --out {base.parent}")


def load_crops(caches: list[Path], size: int, include: str | None, exclude: str | None, max_crops: int,
               mesh: bool = False):
    """All usable crops of the given caches (up to ``max_crops`` per video), with labels and groups.

    Landmarks are the cache's five points, or with ``mesh`` the 468-point face mesh written by
    tools/mesh_landmarks.py where it found the face (the five points elsewhere; then a list, not an array).
    """
    crops, marks, labels, groups, srcs = [], [], [], [], []
    for cache in caches:
        entries = [json.loads(line) for line in (cache / "index.jsonl").read_text().splitlines() if line.strip()]
        latest = {e["key"]: e for e in entries}
        for e in latest.values():
            if e["status"] != "ok" or not e.get("file"):
                continue
            if (include and not re.search(include, e["source"])) or (exclude and re.search(exclude, e["source"])):
                continue
            z = np.load(cache / e["file"])
            points = z["landmarks"]
            if mesh:
                side = cache / "mesh468" / Path(e["file"]).name
                if not side.is_file():
                    raise SystemExit(f"{side} is missing: run python tools/mesh_landmarks.py {cache} first")
                found = np.load(side)["landmarks"]
                points = [f if np.isfinite(f).all() else p for f, p in zip(found, points)]
            every = z["crops"]  # read once: each z["crops"] reads the whole array again
            take = spread_evenly(len(every), max_crops)
            for k in take:
                c = every[k]
                scale = size / c.shape[0]
                # a copy, not a view: a view would keep the entry's whole array alive
                crops.append(cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) if c.shape[0] != size else c.copy())
                marks.append(np.asarray(points[k], np.float32) * scale)
                labels.append(e["label"])
                groups.append(e["group"])
                srcs.append(e["source"])
    return np.stack(crops), (marks if mesh else np.stack(marks)), np.array(labels), groups, srcs


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random horizontal flip, then :func:`photometric`."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return photometric(img, rng)


def augment_with_mask(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`augment` with the same flip applied to a per-pixel ``mask`` (the same random draws)."""
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    return photometric(img, rng), np.ascontiguousarray(mask)


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness/contrast, down/up-scaling, blur and JPEG re-compression (geometry unchanged)."""
    img = img.astype(np.float32)
    if rng.random() < 0.5:  # brightness / contrast
        img = (img - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
    img = np.clip(img, 0, 255).astype(np.uint8)
    h = img.shape[0]
    if rng.random() < 0.3:  # down/up-scale
        s = int(h * rng.uniform(0.4, 0.9))
        img = cv2.resize(cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA), (h, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:  # JPEG re-compression
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(img)


@torch.no_grad()
def predict(model, crops: np.ndarray, bs: int = CPU_BATCH_SIZE, forward=None) -> np.ndarray:
    """Logits of ``crops`` in batches of ``bs``: ``forward`` (default: ``model`` itself) maps a batch
    to logits ``(..., batch)``; the batches are joined along the last axis.

    Small batches stay in the CPU's cache: Lite0 at 224 px scored 13.7 ms a crop in batches of 16 vs
    55.1 ms in batches of 128, at 160 px 5.9 vs 9.3 ms; batches of 8 as fast as 16 or faster
    (``bench/train_speed.py``, 2 threads)."""
    model.eval()
    forward = forward or model
    out = [forward(crops_to_tensor(crops[i:i + bs], model.input_spec)) for i in range(0, len(crops), bs)]
    return torch.cat(out, dim=-1).numpy()


#: the second member's weights a two-member ensemble is tried at (``tools/make_ensemble.py --keep-first-within``)
SECOND_WEIGHTS = tuple(float(w) for w in np.round(np.arange(0, 0.51, 0.05), 2))


def weighted_logits(first: np.ndarray, second: np.ndarray, w: float) -> np.ndarray:
    """A two-member ensemble's logit with weight ``w`` on the second member (the shipped ensembles' sum)."""
    return (1 - w) * first + w * second


def largest_within(aucs: dict[float, float], within: float) -> float:
    """The largest weight whose AUC is at most ``within`` below the first member's alone (``aucs[0.0]``)."""
    return max(w for w, auc in aucs.items() if auc >= aucs[0.0] - within)


def split_metrics(labels: np.ndarray, logits: np.ndarray, temperature: float, name: str) -> dict[str, float]:
    """``{name}_auc``, ``{name}_log_loss`` and ``{name}_accuracy`` (at 0.5) of temperature-scaled logits."""
    p = sigmoid(logits / temperature)
    return {f"{name}_auc": roc_auc(labels, logits), f"{name}_log_loss": log_loss(labels, p),
            f"{name}_accuracy": float(((p >= 0.5) == labels).mean())}


def source_folds(video_cache: Path, k: int) -> list[list[str]]:
    """The talking-face sources (every source not starting with "DFDC") of a cache dealt into ``k``
    folds for source-level cross-validation (``tools/source_cv.py``): biggest first, round robin, real-
    and fake-majority sources separately so every fold holds both labels. Deterministic."""
    from fak3zer0.data.cache import FaceCropCache

    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in FaceCropCache(video_cache).filter():
        if not e["source"].startswith("DFDC"):
            counts[e["source"]][int(e["label"])] += 1
    folds: list[list[str]] = [[] for _ in range(k)]
    for label in (0, 1):  # biggest first, round robin: every fold gets reals and fakes
        names = sorted((s for s, c in counts.items() if c[label] >= c[1 - label]), key=lambda s: -counts[s][label])
        for i, s in enumerate(names):
            folds[i % k].append(s)
    return folds

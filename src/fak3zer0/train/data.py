"""Face-crop caches as model inputs: sources, items (what one model input is), Torch datasets.

A *cache* is the folder ``fak3zer0 preprocess`` writes (``docs/cache-format.md``). One cache
entry is one video or image; its ``.npz`` holds K face crops with their track ids, frame
indices and five landmarks. What one model input is follows the model's
:class:`~fak3zer0.models.registry.InputSpec`, exactly as :class:`fak3zer0.api.Detector`
builds them at inference:

* ``frame`` -- one crop;
* ``frames`` / ``clip`` -- T crops of one face track, in frame order, cut into the
  non-overlapping windows of :func:`~fak3zer0.models.inputs.window_starts` (short tracks are
  stretched with :func:`~fak3zer0.models.inputs.pad_indices`);
* ``landmarks`` -- the same windows of landmark sets, in crop-normalised units
  (landmarks / crop size).

Crops whose cache size differs from the model's input size are resized once, when loaded.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from fak3zer0.data.cache import FaceCropCache
from fak3zer0.errors import ConfigError, DatasetError
from fak3zer0.models.inputs import (
    crops_to_tensor,
    landmarks_to_tensor,
    pad_indices,
    sequence_to_tensor,
    window_starts,
)
from fak3zer0.models.registry import InputSpec

CACHE_FORMAT = "fak3zer0.cache"
#: Index order of the five points after a horizontal flip (eyes and mouth corners swap).
FLIP_LANDMARKS = np.array([1, 0, 2, 4, 3])


# ---------------------------------------------------------------- cache access

@dataclass
class CacheEntry:
    """One ``index.jsonl`` line with status ``ok`` (plus the reader's own record)."""

    key: str
    video_id: str
    label: int
    group: str
    split: str
    source: str
    method: str
    kind: str
    n_crops: int
    file: str | None
    status: str = "ok"
    raw: Any = field(default=None, repr=False)


def _get(rec: Any, name: str, default: Any = None) -> Any:
    if isinstance(rec, dict):
        return rec.get(name, default)
    return getattr(rec, name, default)


def _entry(rec: Any) -> CacheEntry:
    return CacheEntry(
        key=str(_get(rec, "key", "")), video_id=str(_get(rec, "video_id", "") or _get(rec, "key", "")),
        label=int(_get(rec, "label", 0)), group=str(_get(rec, "group", "") or _get(rec, "video_id", "")),
        split=str(_get(rec, "split", "train") or "train"), source=str(_get(rec, "source", "") or ""),
        method=str(_get(rec, "method", "") or ""), kind=str(_get(rec, "kind", "video") or "video"),
        n_crops=int(_get(rec, "n_crops", 0) or 0), file=_get(rec, "file"),
        status=str(_get(rec, "status", "ok") or "ok"), raw=rec,
    )


class CacheSource:
    """A face-crop cache opened for training / evaluation."""

    def __init__(self, root: str | Path, name: str | None = None,
                 train_splits: Sequence[str] | None = None, val_splits: Sequence[str] | None = None,
                 include_sources: Sequence[str] | None = None, exclude_sources: Sequence[str] | None = None,
                 kinds: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        if not (self.root / "cache.json").is_file() or not (self.root / "index.jsonl").is_file():
            raise DatasetError(f"{self.root} is not a face-crop cache (no cache.json / index.jsonl); "
                               "run `fak3zer0 preprocess` first or give the dataset's --layout")
        self.reader = FaceCropCache(self.root)
        self.meta = dict(self.reader.meta)
        if self.meta.get("format", CACHE_FORMAT) != CACHE_FORMAT:
            raise DatasetError(f"{self.root}/cache.json is not a {CACHE_FORMAT} file")
        self.name = name or self.root.name
        self.train_splits = list(train_splits) if train_splits is not None else None
        self.val_splits = list(val_splits) if val_splits is not None else None
        all_entries = [e for e in (_entry(r) for r in self.reader.entries)
                       if _source_wanted(e, include_sources, exclude_sources, kinds)]
        self.status_counts: dict[str, int] = {}
        for e in all_entries:
            self.status_counts[e.status] = self.status_counts.get(e.status, 0) + 1
        #: usable entries (status ok, with crops); ``skipped``: the others (no_face, error)
        self.entries = [e for e in all_entries if e.status == "ok" and e.file and e.n_crops != 0]
        self.skipped = [e for e in all_entries if not (e.status == "ok" and e.file and e.n_crops != 0)]

    @property
    def crop_size(self) -> int | None:
        s = self.meta.get("crop_size")
        return int(s) if s else None

    def load(self, i: int) -> dict[str, np.ndarray]:
        arrays = self.reader.load(self.entries[i].raw)
        return {k: np.asarray(v) for k, v in dict(arrays).items()}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "cache": str(self.root), "entries": len(self.entries),
                "status": dict(self.status_counts), "crop_size": self.crop_size}


def _source_wanted(e: CacheEntry, include: Sequence[str] | None, exclude: Sequence[str] | None,
                   kinds: Sequence[str] | None) -> bool:
    """Filters for leave-one-source-out work: regular expressions matched against ``source``."""
    import re

    if kinds and e.kind not in kinds:
        return False
    if include and not any(re.search(p, e.source) for p in include):
        return False
    return not (exclude and any(re.search(p, e.source) for p in exclude))


def _sha_fraction(text: str) -> float:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def build_cache_from_dataset(root: str | Path, layout: str, cache_dir: str | Path, *, frames: int = 32,
                             crop_size: int | None = None) -> Path:
    """Preprocess a dataset tree into a cache folder (resumable: finished samples are skipped).

    ``fak3zer0.data.readers.read_dataset`` + ``fak3zer0.data.cache.preprocess``, imported lazily.
    """
    cache_dir = Path(cache_dir)
    try:
        from fak3zer0.data.cache import preprocess
        from fak3zer0.data.readers import read_dataset
    except ImportError as exc:
        raise DatasetError(f"preprocessing a dataset needs fak3zer0.data.readers / fak3zer0.data.cache "
                           f"({exc}); build a cache with `fak3zer0 preprocess` and pass its folder") from None
    samples = read_dataset(root, layout)
    kwargs: dict[str, Any] = {"frames": int(frames)}
    if crop_size:
        kwargs["crop_size"] = int(crop_size)
    preprocess(samples, cache_dir, root=root, **kwargs)
    return cache_dir


def open_sources(specs: Sequence[Any], *, layout: str | None = None, work_dir: str | Path | None = None,
                 frames: int = 32, crop_size: int | None = None) -> list[CacheSource]:
    """Open data sources: cache folders, or dataset folders preprocessed into ``work_dir/caches``.

    Each spec is a path string or a dict with ``cache`` (a cache folder) or ``root`` +
    ``layout`` (a dataset), plus optional ``name``, ``train_splits``, ``val_splits`` and the
    filters ``include_sources`` / ``exclude_sources`` (regular expressions on each entry's
    ``source``, for leave-one-source-out runs) and ``kinds`` (``[image]``, ``[video]``).
    """
    if isinstance(specs, (str, Path, dict)):
        specs = [specs]
    out: list[CacheSource] = []
    for spec in specs:
        d = {"path": str(spec)} if isinstance(spec, (str, Path)) else dict(spec)
        unknown = set(d) - {"path", "cache", "root", "layout", "name", "train_splits", "val_splits",
                            "include_sources", "exclude_sources", "kinds"}
        if unknown:
            raise ConfigError(f"data source {spec!r}: unknown key(s) {sorted(unknown)}")
        path = Path(str(d.get("cache") or d.get("path") or d.get("root") or "")).expanduser()
        if not str(path) or str(path) == ".":
            raise ConfigError(f"data source {spec!r} names no folder (give `cache:` or `root:` + `layout:`)")
        src_layout = d.get("layout") or (None if d.get("cache") else layout)
        if not (path / "cache.json").is_file() and src_layout:
            if work_dir is None:
                raise ConfigError(f"{path} is a dataset ({src_layout}); an output folder is needed to cache it")
            digest = hashlib.sha1(f"{path.resolve()}|{src_layout}|{frames}".encode()).hexdigest()[:8]
            path = build_cache_from_dataset(path, src_layout, Path(work_dir) / "caches" / f"{path.name}-{digest}",
                                            frames=frames, crop_size=crop_size)
        elif not path.exists():
            raise DatasetError(f"data source not found: {path}")
        out.append(CacheSource(path, d.get("name"), d.get("train_splits"), d.get("val_splits"),
                               d.get("include_sources"), d.get("exclude_sources"), d.get("kinds")))
    names = [s.name for s in out]
    for i, s in enumerate(out):  # unique display names
        if names.count(s.name) > 1:
            s.name = f"{s.name}#{i}"
    return out


def select_entries(source: CacheSource, splits: Sequence[str] | None) -> list[int]:
    """Indices of the source's entries whose split is in ``splits`` (all when ``None``)."""
    if splits is None:
        return list(range(len(source.entries)))
    want = set(splits)
    return [i for i, e in enumerate(source.entries) if e.split in want]


def train_val_entries(sources: Sequence[CacheSource], train_splits: Sequence[str], val_splits: Sequence[str],
                      val_fraction: float = 0.0) -> tuple[list[tuple[int, int]], list[tuple[int, int]], str]:
    """``(train, val, how)`` lists of ``(source index, entry index)``.

    Splits come from the cache (per source overrides win). When no entry is in a val split and
    ``val_fraction > 0``, whole leakage groups are moved to val by a hash of the group name.
    """
    train, val = [], []
    for si, s in enumerate(sources):
        tr = s.train_splits if s.train_splits is not None else train_splits
        va = s.val_splits if s.val_splits is not None else val_splits
        tr_idx = select_entries(s, tr)
        taken = set(tr_idx)  # a split named in both lists trains
        train += [(si, i) for i in tr_idx]
        val += [(si, i) for i in select_entries(s, va) if i not in taken]
    how = "splits"
    if not val and val_fraction > 0:
        keep, val = [], []
        for si, i in train:
            e = sources[si].entries[i]
            (val if _sha_fraction(f"{sources[si].name}|{e.group}") < val_fraction else keep).append((si, i))
        train, how = keep, f"group hash, {val_fraction:.0%} of groups"
    return train, val, how


# ---------------------------------------------------------------- arrays in memory

def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """(K, S, S, 3) uint8 -> (K, size, size, 3); area averaging when shrinking."""
    if crops.shape[1] == size and crops.shape[2] == size:
        return crops
    interp = cv2.INTER_AREA if crops.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(c, (size, size), interpolation=interp) for c in crops]) if len(crops) \
        else np.zeros((0, size, size, 3), np.uint8)


class ArrayStore:
    """Loads entries' arrays (crops resized to the model size, landmarks scaled with them).

    ``preload=True`` keeps everything in memory (shared copy-on-write with DataLoader
    workers); otherwise a small LRU keeps the last entries.
    """

    def __init__(self, sources: Sequence[CacheSource], size: int, *, need_crops: bool = True,
                 preload: bool | str = "auto", keys: Sequence[tuple[int, int]] = (), lru: int = 16,
                 max_preload_bytes: int = 2 << 30) -> None:
        self.sources = list(sources)
        self.size = int(size)
        self.need_crops = need_crops
        self._lru: OrderedDict[tuple[int, int], dict[str, np.ndarray]] = OrderedDict()
        self._lru_size = lru
        self._all: dict[tuple[int, int], dict[str, np.ndarray]] | None = None
        if preload == "auto":
            est = sum(self.sources[s].entries[i].n_crops for s, i in keys) * self.size ** 2 * 3
            preload = need_crops is False or est <= max_preload_bytes
        if preload and keys:
            self._all = {k: self._read(k) for k in dict.fromkeys(keys)}

    def _read(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        src = self.sources[key[0]]
        a = src.load(key[1])
        if "crops" not in a:
            raise DatasetError(f"{src.root}: entry {src.entries[key[1]].key} has no 'crops' array")
        crops = a["crops"]
        k, s = crops.shape[0], crops.shape[1]
        lm = a.get("landmarks")
        lm = np.zeros((k, 5, 2), np.float32) if lm is None else np.asarray(lm, np.float32).reshape(k, -1, 2)
        out = {
            "track_id": np.asarray(a.get("track_id", np.zeros(k)), np.int64).reshape(k),
            "frame_index": np.asarray(a.get("frame_index", np.arange(k)), np.int64).reshape(k),
            # crop-normalised landmarks: independent of any resize
            "landmarks_norm": lm / float(s),
        }
        if self.need_crops:
            out["crops"] = resize_crops(np.ascontiguousarray(crops, dtype=np.uint8), self.size)
        return out

    def get(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        if self._all is not None and key in self._all:
            return self._all[key]
        hit = self._lru.get(key)
        if hit is None:
            hit = self._read(key)
            self._lru[key] = hit
            if len(self._lru) > self._lru_size:
                self._lru.popitem(last=False)
        else:
            self._lru.move_to_end(key)
        return hit


# ---------------------------------------------------------------- items

@dataclass(frozen=True)
class Item:
    """One model input: which crops of which track of which entry, and its label."""

    src: int
    entry: int
    track: int
    crops: tuple[int, ...]   # indices into the entry's arrays, in input order (after padding)
    cover: tuple[int, ...]   # crops whose frame score this input sets (as the Detector does)
    label: int
    synth: bool = False      # a self-blended fake made from a real crop
    track_crops: tuple[int, ...] = ()  # the whole track, for random windows while training


def _tracks(arrays: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    tid, fi = arrays["track_id"], arrays["frame_index"]
    out = {}
    for t in sorted(set(tid.tolist())):
        idx = np.flatnonzero(tid == t)
        out[int(t)] = idx[np.argsort(fi[idx], kind="stable")]
    return out


def build_items(store: ArrayStore, keys: Sequence[tuple[int, int]], spec: InputSpec, *,
                max_crops_per_video: int | None = None, synth_fakes: bool = False) -> list[Item]:
    """Model inputs for the given entries, in a fixed order (entry, track, frame)."""
    items: list[Item] = []
    for key in keys:
        e = store.sources[key[0]].entries[key[1]]
        arrays = store.get(key)
        for t, idx in _tracks(arrays).items():
            if spec.kind == "frame":
                chosen = idx
                if max_crops_per_video and len(idx) > max_crops_per_video:
                    chosen = idx[np.floor(np.linspace(0, len(idx), max_crops_per_video, endpoint=False)).astype(int)]
                for c in chosen:
                    items.append(Item(key[0], key[1], t, (int(c),), (int(c),), e.label))
                    if synth_fakes and e.label == 0:
                        items.append(Item(key[0], key[1], t, (int(c),), (int(c),), 1, True))
            else:
                n, length = len(idx), spec.frames
                for s in window_starts(n, length):
                    win = idx[s:s + length]
                    take = win[pad_indices(len(win), length)]
                    it = Item(key[0], key[1], t, tuple(int(c) for c in take), tuple(int(c) for c in win),
                              e.label, False, tuple(int(c) for c in idx))
                    items.append(it)
                    if synth_fakes and e.label == 0:
                        items.append(Item(it.src, it.entry, t, it.crops, it.cover, 1, True, it.track_crops))
    return items


# ---------------------------------------------------------------- dataset

class CacheDataset(torch.utils.data.Dataset):
    """Tensors for a model's InputSpec from cache items; ``__getitem__`` -> ``(x, label, index)``.

    With ``train=True`` each item gets augmentations (one draw per item, shared by the frames
    of a window), temporal items take a random window of their track, and ``synth`` items
    are self-blended from their real crops. All randomness comes from
    ``numpy.random.default_rng([seed, epoch, index])``: results do not depend on workers.
    """

    def __init__(self, store: ArrayStore, items: Sequence[Item], spec: InputSpec, *, train: bool = False,
                 augment: Callable[[list[np.ndarray], np.random.Generator], list[np.ndarray]] | None = None,
                 seed: int = 0, self_blend: Callable | None = None) -> None:
        self.store, self.items, self.spec = store, list(items), spec
        self.train, self.augment, self.seed = train, augment, int(seed)
        self.self_blend = self_blend
        self.epoch = 0
        if any(it.synth for it in self.items) and self_blend is None:
            raise ConfigError("synthetic fakes need a self_blend function")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items], dtype=np.int64)

    def _indices(self, it: Item, rng: np.random.Generator | None) -> np.ndarray:
        if rng is None or self.spec.kind == "frame" or len(it.track_crops) <= self.spec.frames:
            return np.asarray(it.crops)
        tc = np.asarray(it.track_crops)
        s = int(rng.integers(0, len(tc) - self.spec.frames + 1))
        return tc[s:s + self.spec.frames]

    def __getitem__(self, i: int):
        it = self.items[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        arrays = self.store.get((it.src, it.entry))
        idx = self._indices(it, rng)
        label = torch.tensor(float(it.label))
        if self.spec.kind == "landmarks":
            pts = arrays["landmarks_norm"][idx].astype(np.float32)
            if self.spec.landmarks and pts.shape[1] != self.spec.landmarks:
                raise DatasetError(f"model wants {self.spec.landmarks} landmarks, the cache has {pts.shape[1]}")
            if rng is not None and rng.random() < 0.5:
                pts = pts.copy()
                pts[..., 0] = 1.0 - pts[..., 0]
                if pts.shape[1] == 5:
                    pts = pts[:, FLIP_LANDMARKS]
            return landmarks_to_tensor(pts)[0], label, i
        crops = [arrays["crops"][c] for c in idx]
        if it.synth:
            seed = int(np.random.default_rng([self.seed, self.epoch, i, 1]).integers(2 ** 31))
            lms = arrays["landmarks_norm"][idx] * self.store.size
            # the same seed per frame: one blend recipe across the window
            crops = [np.asarray(self.self_blend(c, lm, np.random.default_rng(seed))[0], dtype=np.uint8)
                     for c, lm in zip(crops, lms)]
        if rng is not None and self.augment is not None:
            crops = self.augment(crops, rng)
        stack = np.stack(crops)
        if self.spec.kind == "frame":
            return crops_to_tensor(stack, self.spec)[0], label, i
        return sequence_to_tensor(stack, self.spec)[0], label, i


def load_self_blend(lower_face: float = 0.0) -> Callable:
    """``fak3zer0.data.sbi.self_blend``, blending over the lower face only for a ``lower_face`` share of
    the fakes (imported only when ``synthesis: sbi`` is asked for)."""
    try:
        from fak3zer0.data.sbi import region_mix
    except ImportError as exc:
        raise ConfigError(f"data.synthesis: sbi needs fak3zer0.data.sbi ({exc})") from None
    return region_mix(lower_face)

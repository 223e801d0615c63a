"""The face-crop cache: decode, detect, track and crop every sample once; train from the crops.

Implements docs/cache-format.md (the contract with the training and evaluation code)::

    CACHE/cache.json   settings + provenance
    CACHE/index.jsonl  one line per processed sample, append-only, latest line per key wins
    CACHE/crops/ab/<key>.npz

Resumable: a sample whose key already has an index line is skipped. Each ``.npz`` is written to a
temporary name in its final folder, flushed to disk and renamed; its index line is appended only
after the rename. A run killed at any point therefore leaves no half-written entry: at worst one
finished ``.npz`` without its index line, which the next run redoes (the rename replaces it).
Stale temporary files and a truncated last index line (a run killed mid-write) are cleaned up at
the start of the next run.

Beyond the contract, each index line also carries ``member`` (the folder inside an archive, for
WildDeepfake sequences read from ``.tar.gz``; "" otherwise) and ``face_fallback`` (how many crops
are whole frames because the detector found no face in an already-cropped face frame; their
landmarks are the mean five-point layout, not detections).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from fak3zer0.data.samples import Sample
from fak3zer0.errors import DatasetError, Fak3Zer0Error

FORMAT = "fak3zer0.cache"
VERSION = 1
SETTINGS = ("crop_size", "margin", "frames", "face_detector", "max_tracks")
INDEX_FIELDS = ("key", "path", "video_id", "label", "group", "split", "source", "method", "kind",
                "status", "error", "n_crops", "file")
_TMP_SUFFIX = ".tmp"


# ------------------------------------------------------------------ keys and files

def sample_key(sample: Sample, root: str | os.PathLike | None = None) -> str:
    """sha1 of the sample's path relative to its dataset root (``Sample.root``, else ``root``)."""
    if not sample.root and root is not None:
        rel = os.path.relpath(sample.path, root).replace(os.sep, "/")
        rel = f"{rel}::{sample.member}" if sample.member else rel
    else:
        rel = sample.relpath
    return hashlib.sha1(rel.encode("utf-8")).hexdigest()


def crop_file(key: str) -> str:
    """Path of a key's ``.npz`` relative to the cache folder."""
    return f"crops/{key[:2]}/{key}.npz"


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray], compress: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_index(path: str | os.PathLike) -> dict[str, dict]:
    """``key -> entry`` from an index.jsonl; the latest line per key wins, unparsable lines are skipped
    (a run killed mid-write leaves a truncated last line). Keys keep their first-seen order."""
    entries: dict[str, dict] = {}
    p = Path(path)
    if not p.is_file():
        return entries
    with open(p, "rb") as f:
        for raw in f:
            try:
                entry = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                entries[entry["key"]] = entry
    return entries


def _repair_index(path: Path) -> None:
    """Cut a truncated last line (no trailing newline) so the next append starts on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        size = f.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:  # scan back in blocks to the last newline
            step = min(65536, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                f.truncate(pos - step + nl + 1)
                return
            pos -= step
        f.truncate(0)


def _remove_stale_tmp(root: Path) -> int:
    n = 0
    for folder in (root, root / "crops"):
        if not folder.is_dir():
            continue
        for p in folder.rglob(f".*{_TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Refuse a second concurrent ``preprocess`` on the same cache folder (POSIX advisory lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(root / ".lock", "w") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatasetError(f"cache {root} is being written by another preprocess run") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------ per-sample work

def _fallback_face(image: np.ndarray):
    """A whole-frame "face" for an already-cropped face frame where the detector found none."""
    from fak3zer0.defaults import CROP_MARGIN
    from fak3zer0.faces.detector import MEAN_FIVE_POINTS, FaceBox

    h, w = image.shape[:2]
    box = np.array([0.0, 0.0, float(w), float(h)])
    # Assume the frame is a face box grown by the usual margin: put the mean layout in its centre.
    cx, cy, side_w, side_h = w / 2, h / 2, w / CROP_MARGIN, h / CROP_MARGIN
    inner = np.array([cx - side_w / 2, cy - side_h / 2])
    lm = inner + MEAN_FIVE_POINTS * np.array([side_w, side_h])
    return FaceBox(box, 0.0, lm, landmarks_estimated=True)


def extract_sample(sample: Sample, detector, settings: dict) -> tuple[dict[str, np.ndarray] | None, int]:
    """Decode, detect, track and crop one sample -> (arrays per docs/cache-format.md or None, n fallbacks)."""
    from fak3zer0.faces.crop import crop_face, transform_points
    from fak3zer0.faces.track import select_tracks, track_faces
    from fak3zer0.media.decode import probe_media, sample_frames

    size, margin = int(settings["crop_size"]), float(settings["margin"])
    n_frames, max_tracks = int(settings["frames"]), int(settings["max_tracks"])
    is_seq = sample.kind == "frames"
    if is_seq:
        from fak3zer0.data.readers.wilddeepfake import iter_sequence_frames

        frames = iter_sequence_frames(sample, n_frames)
    else:
        info = probe_media(sample.path)
        frames = sample_frames(sample.path, n_frames if info.kind == "video" else 1, info)

    per_frame = []  # FaceBox lists, one per sampled frame
    meta: list[tuple[int, float]] = []
    transforms: dict[int, np.ndarray] = {}
    fallbacks: set[int] = set()
    for frame in frames:
        faces = detector.detect(frame.image)
        if is_seq:  # one face per sequence frame: the largest detection, else the whole frame
            if faces:
                faces = [max(faces, key=lambda fb: fb.area)]
                fb_margin = margin
            else:
                faces = [_fallback_face(frame.image)]
                fallbacks.add(id(faces[0]))
                fb_margin = 1.0
        for fb in faces:
            fb.crop, m = crop_face(frame.image, fb.box, size, fb_margin if is_seq else margin)
            transforms[id(fb)] = m
        per_frame.append(faces)
        meta.append((int(frame.index), float(frame.time_s)))
    if is_seq:
        from fak3zer0.faces.track import FaceTrack

        tracks = [FaceTrack(0, [(pos, faces[0]) for pos, faces in enumerate(per_frame) if faces])]
    else:
        tracks = select_tracks(track_faces(per_frame), len(per_frame), max_tracks)
    items = [(t.track_id, pos, fb) for t in tracks for pos, fb in t.items]
    if not items:
        return None, 0
    crops = np.stack([fb.crop for _, _, fb in items]).astype(np.uint8)
    arrays = {
        "crops": crops,
        "boxes": np.array([fb.box for _, _, fb in items], dtype=np.float32).reshape(-1, 4),
        "landmarks": np.array([transform_points(fb.landmarks, transforms[id(fb)]) for _, _, fb in items],
                              dtype=np.float32).reshape(-1, 5, 2),
        "frame_index": np.array([meta[pos][0] for _, pos, _ in items], dtype=np.int32),
        "time_s": np.array([meta[pos][1] for _, pos, _ in items], dtype=np.float32),
        "track_id": np.array([tid for tid, _, _ in items], dtype=np.int16),
    }
    return arrays, sum(1 for _, _, fb in items if id(fb) in fallbacks)


def process_sample(key: str, sample: Sample, out_dir: str, settings: dict, detector,
                   compress: bool = False) -> dict:
    """Do one sample end to end (npz written and renamed) and return its index entry."""
    entry = {
        "key": key, "path": os.path.abspath(sample.path), "video_id": sample.video_id, "label": int(sample.label),
        "group": sample.group, "split": sample.split, "source": sample.source, "method": sample.method,
        "kind": sample.kind, "status": "ok", "error": None, "n_crops": 0, "file": None,
        "member": sample.member, "face_fallback": 0,
    }
    try:
        arrays, n_fallback = extract_sample(sample, detector, settings)
    except Fak3Zer0Error as exc:
        entry.update(status="error", error=str(exc))
        return entry
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a day-long run
        entry.update(status="error", error=f"{type(exc).__name__}: {exc}")
        return entry
    if arrays is None:
        entry.update(status="no_face")
        return entry
    rel = crop_file(key)
    _write_npz_atomic(Path(out_dir) / rel, arrays, compress)
    entry.update(n_crops=int(len(arrays["crops"])), file=rel, face_fallback=int(n_fallback))
    return entry


_WORKER: dict[str, Any] = {}


def _exit_with_parent(parent: int) -> None:
    """Worker side: leave when the parent is gone (a killed run must not leave idle workers behind)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="fak3zer0-parent-watch", daemon=True).start()


def _worker_init(face_detector: str, settings: dict, out_dir: str, compress: bool, parent: int) -> None:
    _exit_with_parent(parent)
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from fak3zer0.faces.detector import build_face_detector

    _WORKER.update(detector=build_face_detector(face_detector), settings=settings, out_dir=out_dir,
                   compress=compress)


def _worker_run(key: str, sample: Sample) -> dict:
    w = _WORKER
    return process_sample(key, sample, w["out_dir"], w["settings"], w["detector"], w["compress"])


# ------------------------------------------------------------------ preprocess

def _check_meta(root: Path, settings: dict, samples: list[Sample]) -> dict:
    path = root / "cache.json"
    roots = sorted({s.root for s in samples if s.root})
    sources = sorted({s.source for s in samples if s.source})
    if path.is_file():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cache {root}: cache.json is unreadable ({exc})") from None
        if meta.get("format") != FORMAT:
            raise DatasetError(f"{root} holds a cache.json that is not a {FORMAT} cache")
        if meta.get("version") != VERSION:
            raise DatasetError(f"cache {root} is format version {meta.get('version')}; this code writes {VERSION}")
        diff = {k: (meta.get(k), settings[k]) for k in SETTINGS if meta.get(k) != settings[k]}
        if diff:
            told = ", ".join(f"{k}={new!r} (cache has {old!r})" for k, (old, new) in diff.items())
            raise DatasetError(f"cache {root} was made with other settings: {told}; "
                               "use a new folder or the same settings")
        src = meta.setdefault("source", {})
        new_roots = sorted(set(src.get("roots", [])) | set(roots))
        new_sources = sorted(set(src.get("sources", [])) | set(sources))
        if new_roots != src.get("roots") or new_sources != src.get("sources"):
            src.update(roots=new_roots, sources=new_sources)
            _write_json_atomic(path, meta)
        return meta
    meta = {"format": FORMAT, "version": VERSION, **settings,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": {"roots": roots, "sources": sources}}
    _write_json_atomic(path, meta)
    return meta


def _is_done(entry: dict | None, root: Path, retry_errors: bool) -> bool:
    if entry is None:
        return False
    if entry.get("status") == "ok":
        return bool(entry.get("file")) and (root / entry["file"]).is_file()  # redo if the npz was deleted
    if entry.get("status") == "error":
        return not retry_errors
    return True


def preprocess(samples: Iterable[Sample], out_dir: str | os.PathLike, *, crop_size: int = 256, margin: float = 1.3,
               frames: int = 32, face_detector: str = "mtcnn", max_tracks: int = 2, workers: int | None = None,
               progress: bool = True, root: str | os.PathLike | None = None, retry_errors: bool = False,
               compress: bool = False) -> dict[str, int]:
    """Build (or continue) the face-crop cache at ``out_dir`` for ``samples``.

    ``workers``: processes (default ``os.cpu_count()``); each builds its face detector once and runs
    torch on one thread. ``workers=1`` works in this process. ``root``: dataset root for samples
    whose ``Sample.root`` is empty (keys are paths relative to it). ``retry_errors``: redo samples
    whose last attempt ended in status "error". ``compress``: zlib-compress the ``.npz`` files
    (smaller, slower to load).

    Returns counts: ``total`` (distinct samples), ``skipped`` (already in the index), ``processed``
    and, of those, ``ok`` / ``no_face`` / ``error``.
    """
    from tqdm import tqdm

    if crop_size < 8 or frames < 1 or max_tracks < 1 or margin < 1.0:
        raise DatasetError(f"preprocess: need crop_size >= 8, frames >= 1, max_tracks >= 1, margin >= 1 "
                           f"(got {crop_size}, {frames}, {max_tracks}, {margin})")
    settings = {"crop_size": int(crop_size), "margin": float(margin), "frames": int(frames),
                "face_detector": str(face_detector), "max_tracks": int(max_tracks)}
    workers = max(1, int(workers if workers is not None else (os.cpu_count() or 1)))
    samples = list(samples)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Distinct keys; two different files mapping to one key would overwrite each other.
    todo_all: dict[str, Sample] = {}
    for s in samples:
        key = sample_key(s, root)
        prev = todo_all.get(key)
        if prev is not None and os.path.abspath(prev.path) != os.path.abspath(s.path):
            raise DatasetError(f"preprocess: {prev.path} and {s.path} have the same path relative to their dataset "
                               "roots; put different datasets in different cache folders")
        todo_all.setdefault(key, s)

    counts = {"total": len(todo_all), "skipped": 0, "processed": 0, "ok": 0, "no_face": 0, "error": 0}
    with _locked(out):
        _check_meta(out, settings, samples)
        index_path = out / "index.jsonl"
        _repair_index(index_path)
        _remove_stale_tmp(out)
        index = read_index(index_path)
        todo = [(k, s) for k, s in todo_all.items() if not _is_done(index.get(k), out, retry_errors)]
        counts["skipped"] = len(todo_all) - len(todo)
        if not todo:
            return counts
        from fak3zer0.faces.detector import build_face_detector

        # Built here even for a pool: a bad name or missing weights fail now, with a clear message.
        detector = build_face_detector(face_detector)

        bar = tqdm(total=len(todo_all), initial=counts["skipped"], desc="preprocess", unit="sample",
                   disable=not progress, dynamic_ncols=True)
        with open(index_path, "a", encoding="utf-8") as index_file:
            def record(entry: dict) -> None:
                index_file.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")
                index_file.flush()
                counts["processed"] += 1
                counts[entry["status"]] += 1
                bar.update(1)
                bar.set_postfix(ok=counts["ok"], no_face=counts["no_face"], error=counts["error"], refresh=False)

            try:
                if workers == 1 or len(todo) == 1:
                    for key, s in todo:
                        record(process_sample(key, s, str(out), settings, detector, compress))
                else:
                    _run_pool(todo, out, settings, face_detector, min(workers, len(todo)), compress, record)
            finally:
                bar.close()
    return counts


def _run_pool(todo, out: Path, settings: dict, face_detector: str, workers: int, compress: bool, record) -> None:
    ctx = get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(face_detector, settings, str(out), compress, os.getpid())) as pool:
        pending: dict = {}
        it = iter(todo)
        try:
            while True:
                while len(pending) < 2 * workers:
                    nxt = next(it, None)
                    if nxt is None:
                        break
                    pending[pool.submit(_worker_run, *nxt)] = nxt[1].path
                if not pending:
                    break
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    path = pending.pop(fut)
                    try:
                        entry = fut.result()
                    except BrokenProcessPool:
                        in_flight = [path] + list(pending.values())
                        raise DatasetError(
                            "a preprocess worker process died (killed for memory? crashed in a decoder?) while "
                            f"working on one of: {', '.join(in_flight[:2 * workers])}. Finished samples are kept; "
                            "rerun to continue. If no worker ever started and you called preprocess from a "
                            "script, put the call under `if __name__ == \"__main__\":` (worker processes are "
                            "spawned) or pass workers=1.") from None
                    record(entry)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


# ------------------------------------------------------------------ reading


def spread_evenly(n: int, at_most: int | None) -> np.ndarray:
    """Indices of at most ``at_most`` of ``n`` items, spread evenly from the first to the last (all of
    them when they fit)."""
    if at_most is None or n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(int))


def _resized(crops: np.ndarray, size: int) -> np.ndarray:
    """``crops`` (K, S, S, 3) at ``size`` px, area-resampled when ``S`` differs."""
    import cv2

    if crops.shape[1] == size:
        return crops
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])


class FaceCropCache:
    """Read a cache written by :func:`preprocess`.

    ``entries``: one dict per key (the latest index line wins), in first-seen order. ``meta``: the
    cache.json settings. ``filter`` / ``samples`` select by split, source, label and status (each
    a value or a collection of values); ``load(entry)`` returns the entry's arrays.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        meta_path = self.path / "cache.json"
        if not meta_path.is_file():
            raise DatasetError(f"not a face-crop cache: {self.path} has no cache.json (run preprocess first)")
        try:
            self.meta: dict = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cache {self.path}: cache.json is unreadable ({exc})") from None
        if self.meta.get("format") != FORMAT:
            raise DatasetError(f"{self.path}/cache.json is not a {FORMAT} cache")
        self.reload()

    def reload(self) -> None:
        self._by_key = read_index(self.path / "index.jsonl")
        self.entries: list[dict] = list(self._by_key.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.entries)

    def __getitem__(self, key: str) -> dict:
        return self._by_key[key]

    @property
    def crop_size(self) -> int:
        return int(self.meta["crop_size"])

    def filter(self, *, split=None, source=None, label=None, status="ok") -> list[dict]:
        """Entries matching every given field (None = any)."""
        def match(value, want) -> bool:
            if want is None:
                return True
            if isinstance(want, (str, int)):
                return value == want
            return value in set(want)

        return [e for e in self.entries if match(e.get("split"), split) and match(e.get("source"), source)
                and match(e.get("label"), label) and match(e.get("status"), status)]

    def load(self, entry: dict | str) -> dict[str, np.ndarray]:
        """The arrays of one entry (or key): crops, boxes, landmarks, frame_index, time_s, track_id."""
        if isinstance(entry, str):
            entry = self._by_key[entry]
        if entry.get("status") != "ok" or not entry.get("file"):
            raise DatasetError(f"cache entry {entry.get('video_id')!r} has status {entry.get('status')!r}: no crops")
        path = self.path / entry["file"]
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise DatasetError(f"cache {self.path}: {entry['file']} is missing; "
                               "rerun preprocess to rebuild it") from None

    def crops(self, entry: dict | str, size: int, max_crops: int | None = None) -> np.ndarray:
        """An entry's crops as (K, size, size, 3) uint8: at most ``max_crops`` spread evenly over
        the entry, resampled with area interpolation when the cache's crop size differs."""
        crops = self.load(entry)["crops"]
        return _resized(crops[spread_evenly(len(crops), max_crops)], size)

    def crops_with_landmarks(self, entry: dict | str, size: int,
                             max_crops: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`crops` and the same crops' landmarks, float32 (K, P, 2) in the returned crops' pixels."""
        z = self.load(entry)
        take = spread_evenly(len(z["crops"]), max_crops)
        crops, marks = z["crops"][take], z["landmarks"][take].astype(np.float32)
        return _resized(crops, size), marks * (size / crops.shape[1])

    def samples(self, **filters) -> list[Sample]:
        """Entries (``filter`` arguments) as :class:`Sample` records."""
        return [Sample(path=e["path"], label=int(e["label"]), video_id=e["video_id"], group=e["group"],
                       split=e["split"], source=e.get("source", ""), method=e.get("method", ""),
                       kind=e.get("kind", "video"), member=e.get("member", ""))
                for e in self.filter(**filters)]

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {"entries": len(self.entries), "crops": 0}
        for e in self.entries:
            out[e.get("status", "?")] = out.get(e.get("status", "?"), 0) + 1
            out["crops"] += int(e.get("n_crops") or 0)
        return out


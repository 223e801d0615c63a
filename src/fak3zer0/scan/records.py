"""What the scanner stores per file, and how a scored batch becomes rows."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

THUMB_SIDE = 112


@dataclass
class ScanTask:
    """One file to decode and score; ``content_hash`` and file facts come from the feeder."""

    task_id: int
    path: str
    content_hash: str
    size_bytes: int | None = None
    mtime_ns: int | None = None


@dataclass
class ScanRecord:
    """One finished file: the ``detect --json`` object plus facts; becomes one ``results`` row."""

    task: ScanTask
    result: dict[str, Any]
    duration_s: float | None = None
    thumbnail: bytes | None = None  # JPEG of the most suspicious face crop

    @property
    def verdict(self) -> str:
        return self.result["verdict"]


@dataclass
class ScanSummary:
    """Counts for the end-of-scan table (this run only)."""

    total: int = 0          # files named by the sources
    scanned: int = 0        # rows written in this run
    skipped: int = 0        # already in the database (or a duplicate seen earlier in this run)
    fake: int = 0
    real: int = 0
    no_face: int = 0
    errors: int = 0
    missing: int = 0        # sources that named nothing (no row; reported on stderr)
    seconds: float = 0.0
    #: seconds from the start until the first file came back decoded (start-up: workers importing
    #: torch and loading the face detector, the model loading, the first file's hash)
    startup_seconds: float = 0.0
    frames: int = 0         # frames decoded and searched for faces, over the scanned files
    interrupted: bool = False
    model: str = ""
    model_version: str = ""
    engine: str = "local"
    workers: int = 0
    db: str = ""
    problems: list[str] = field(default_factory=list)  # first few error messages

    def count(self, verdict: str) -> None:
        self.scanned += 1
        if verdict == "fake":
            self.fake += 1
        elif verdict == "real":
            self.real += 1
        elif verdict == "no_face":
            self.no_face += 1
        else:
            self.errors += 1

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("total", "scanned", "skipped", "fake", "real", "no_face", "errors",
                                           "missing", "frames", "interrupted", "model", "model_version", "engine",
                                           "workers", "db")}
        d["seconds"] = round(self.seconds, 3)
        d["files_per_s"] = round(self.scanned / self.seconds, 3) if self.seconds > 0 else None
        return d


def thumbnail_jpeg(crop: np.ndarray, side: int = THUMB_SIDE, quality: int = 80) -> bytes | None:
    """A small JPEG of an RGB crop (None if encoding fails)."""
    import cv2

    try:
        img = np.ascontiguousarray(crop[..., ::-1])  # RGB -> BGR for OpenCV
        if max(img.shape[:2]) != side:
            img = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return buf.tobytes() if ok else None
    except Exception:  # noqa: BLE001 - a thumbnail is never worth failing a row
        return None


def _most_suspicious_crop(prepared, verdict) -> np.ndarray | None:
    if not verdict.faces or prepared.faces is None:
        return None
    j = int(np.argmax([f.fake_probability for f in verdict.faces]))
    face = verdict.faces[j]
    if not face.frames or j >= len(prepared.faces.tracks):
        return None
    k = int(np.argmax([fr.fake_probability for fr in face.frames]))
    items = prepared.faces.tracks[j].items
    return items[k][1].crop if k < len(items) else None


def score_batch(detector, tasks: list[ScanTask], prepared: list) -> list[ScanRecord]:
    """Batched inference for prepared inputs -> records (with thumbnails).

    If the batch fails as a whole (e.g. out of memory), each file is retried alone, and a file
    that still fails gets an error row: one bad file never stops the scan.
    """
    try:
        verdicts = detector.score(prepared)
    except Exception as exc:  # noqa: BLE001
        if len(prepared) == 1:
            return [error_record(tasks[0], f"model inference failed ({type(exc).__name__}: {exc})",
                                 model=detector.model_name, seconds=getattr(prepared[0], "seconds", 0.0))]
        out: list[ScanRecord] = []
        for t, p in zip(tasks, prepared):
            out.extend(score_one_safely(detector, t, p))
        return out
    return [_record(t, p, v) for t, p, v in zip(tasks, prepared, verdicts)]


def score_one_safely(detector, task: ScanTask, prepared) -> list[ScanRecord]:
    try:
        return [_record(task, prepared, detector.score([prepared])[0])]
    except Exception as exc:  # noqa: BLE001
        return [error_record(task, f"model inference failed ({type(exc).__name__}: {exc})", model=detector.model_name,
                             seconds=getattr(prepared, "seconds", 0.0))]


def _record(task: ScanTask, prepared, verdict) -> ScanRecord:
    verdict.path = task.path
    crop = _most_suspicious_crop(prepared, verdict)
    info = prepared.info
    duration = info.duration_s if info is not None and info.kind == "video" else None
    return ScanRecord(task, verdict.to_dict(), duration, thumbnail_jpeg(crop) if crop is not None else None)


def error_record(task: ScanTask, message: str, *, model: str = "", seconds: float = 0.0) -> ScanRecord:
    from fak3zer0.api.results import VideoVerdict

    return ScanRecord(task, VideoVerdict.failed(task.path, message, model=model, seconds=seconds).to_dict())

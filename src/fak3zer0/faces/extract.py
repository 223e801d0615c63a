"""Frames in, face tracks with crops out: the faces stage of the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from fak3zer0.defaults import CROP_MARGIN, DETECT_EVERY, FULL_DETECT_EVERY, MAX_TRACKS
from fak3zer0.faces.boxes import iou_matrix
from fak3zer0.faces.crop import crop_face
from fak3zer0.faces.detector import FaceBox
from fak3zer0.faces.track import FaceTrack, select_tracks, track_faces
from fak3zer0.media.decode import Frame


@dataclass
class FaceExtraction:
    """What the faces stage found in one input."""

    frames: list[tuple[int, float]] = field(default_factory=list)  # (frame index, time_s) per sampled frame
    tracks: list[FaceTrack] = field(default_factory=list)
    frame_size: tuple[int, int] = (0, 0)  # (height, width)

    @property
    def n_faces(self) -> int:
        return len(self.tracks)

    def frame_of(self, pos: int) -> tuple[int, float]:
        return self.frames[pos]


def _interpolate(a: FaceBox, b: FaceBox, t: float) -> FaceBox:
    lerp = lambda x, y: (1 - t) * np.asarray(x, float) + t * np.asarray(y, float)  # noqa: E731
    return FaceBox(lerp(a.box, b.box), min(a.score, b.score), lerp(a.landmarks, b.landmarks),
                   a.landmarks_estimated or b.landmarks_estimated, interpolated=True)


def _pair_faces(a: list[FaceBox], b: list[FaceBox]) -> list[tuple[FaceBox, FaceBox]] | None:
    """One-to-one match of two detections' faces, or None when they don't clearly correspond.

    Two detections that both found nothing correspond too (no face in between either).
    """
    if len(a) != len(b):
        return None
    if not a:
        return []
    ious = iou_matrix(np.array([f.box for f in a]), np.array([f.box for f in b]))
    j = ious.argmax(axis=1)
    if len(set(j.tolist())) != len(a) or ious[np.arange(len(a)), j].min() < 0.3:
        return None
    return [(a[i], b[j[i]]) for i in range(len(a))]


def extract_faces(
    frames: Iterable[Frame],
    detector,
    crop_size: int,
    *,
    margin: float = CROP_MARGIN,
    max_tracks: int = MAX_TRACKS,
    detect_every: int = DETECT_EVERY,
    full_detect_every: int = FULL_DETECT_EVERY,
    on_frame: Callable[[int], None] | None = None,
) -> FaceExtraction:
    """Detect faces, crop them at ``crop_size`` and link them into tracks.

    The detector runs on every ``detect_every``-th sampled frame (and the last one). When the
    faces found on two such frames clearly correspond (same count, overlapping boxes, or no face
    on either), the boxes and landmarks of the frames between them are interpolated; otherwise those frames are run
    through the detector too, so nothing is lost when faces appear, vanish or jump. At most
    ``detect_every`` frames are held in memory; after cropping only the crops are kept.

    A detector with ``detect_near`` (MTCNN) finds already-known faces again from their last box,
    on all but every ``full_detect_every``-th detection (1 = always the whole frame); when
    a face is not found again there, the whole frame is searched at once. A face that comes into
    view is therefore found at the next whole-frame detection at the latest.
    """
    result = FaceExtraction()
    per_frame: list[list[FaceBox]] = []
    pending: list[Frame] = []  # frames since the last detection, waiting for the next one
    last: list[FaceBox] | None = None
    step = max(1, int(detect_every))

    def emit(frame: Frame, faces: list[FaceBox]) -> None:
        for fb in faces:
            fb.crop, _ = crop_face(frame.image, fb.box, crop_size, margin)
        per_frame.append(faces)
        result.frames.append((frame.index, frame.time_s))
        result.frame_size = frame.image.shape[:2]
        if on_frame:
            on_frame(len(per_frame) - 1)

    def flush(upto: list[FaceBox] | None) -> None:
        pairs = _pair_faces(last, upto) if (last is not None and upto is not None) else None
        for k, fr in enumerate(pending, start=1):
            if pairs is not None:
                t = k / (len(pending) + 1)
                emit(fr, [_interpolate(a, b, t) for a, b in pairs])
            else:
                emit(fr, detector.detect(fr.image))
        pending.clear()

    near = getattr(detector, "detect_near", None)
    full_every = max(1, int(full_detect_every))
    detections = 0

    def detect_step(image) -> list[FaceBox]:
        nonlocal detections
        faces = None
        if near is not None and last and detections % full_every != 0:
            faces = near(image, last)
        detections += 1
        return detector.detect(image) if faces is None else faces

    for pos, frame in enumerate(frames):
        if pos % step == 0:
            faces = detect_step(frame.image)
            flush(faces)
            emit(frame, faces)
            last = faces
        else:
            pending.append(frame)
    if pending:  # the clip ended between detections: detect on the last frame and fill the gap
        tail = pending.pop()
        faces = detect_step(tail.image)
        flush(faces)
        emit(tail, faces)
    result.tracks = select_tracks(track_faces(per_frame), len(per_frame), max_tracks)
    return result


def track_crops(track: FaceTrack) -> np.ndarray:
    """Stack a track's crops into (K, H, W, 3) uint8."""
    return np.stack([fb.crop for _, fb in track.items])

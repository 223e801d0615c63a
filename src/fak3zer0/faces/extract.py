"""Frames in, face tracks with crops out: the faces stage of the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from fak3zer0.defaults import CROP_MARGIN, MAX_TRACKS
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


def extract_faces(
    frames: Iterable[Frame],
    detector,
    crop_size: int,
    *,
    margin: float = CROP_MARGIN,
    max_tracks: int = MAX_TRACKS,
    on_frame: Callable[[int], None] | None = None,
) -> FaceExtraction:
    """Detect faces in each frame, crop them at ``crop_size`` and link them into tracks.

    Frames are consumed one at a time and dropped after cropping, so memory holds only crops.
    """
    result = FaceExtraction()
    per_frame: list[list[FaceBox]] = []
    for pos, frame in enumerate(frames):
        faces = detector.detect(frame.image)
        for fb in faces:
            fb.crop, _ = crop_face(frame.image, fb.box, crop_size, margin)
        per_frame.append(faces)
        result.frames.append((frame.index, frame.time_s))
        result.frame_size = frame.image.shape[:2]
        if on_frame:
            on_frame(pos)
    result.tracks = select_tracks(track_faces(per_frame), len(per_frame), max_tracks)
    return result


def track_crops(track: FaceTrack) -> np.ndarray:
    """Stack a track's crops into (K, H, W, 3) uint8."""
    return np.stack([fb.crop for _, fb in track.items])

"""Link per-frame face detections into tracks (greedy IoU, then centre distance)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fak3zer0.faces.boxes import iou_matrix
from fak3zer0.faces.detector import FaceBox


@dataclass
class FaceTrack:
    """One face followed across the sampled frames. ``items`` holds (frame position, FaceBox)."""

    track_id: int
    items: list[tuple[int, FaceBox]] = field(default_factory=list)

    @property
    def last_box(self) -> np.ndarray:
        return self.items[-1][1].box

    @property
    def mean_area(self) -> float:
        return float(np.mean([fb.area for _, fb in self.items])) if self.items else 0.0

    def __len__(self) -> int:
        return len(self.items)


def _centre_distance(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    size = max(a[2] - a[0], a[3] - a[1], 1.0)
    return float(np.linalg.norm(ca - cb) / size)


def track_faces(detections: list[list[FaceBox]], iou_threshold: float = 0.3, max_centre_shift: float = 0.6,
                max_gap: int = 4) -> list[FaceTrack]:
    """Greedy association frame by frame; a track may miss up to ``max_gap`` sampled frames."""
    tracks: list[FaceTrack] = []
    last_seen: dict[int, int] = {}
    for pos, faces in enumerate(detections):
        live = [t for t in tracks if pos - last_seen[t.track_id] <= max_gap]
        unmatched = list(range(len(faces)))
        if live and faces:
            ious = iou_matrix(np.array([t.last_box for t in live]), np.array([f.box for f in faces]))
            pairs = sorted(((ious[i, j], i, j) for i in range(len(live)) for j in range(len(faces))), reverse=True)
            used_t, used_f = set(), set()
            for score, i, j in pairs:
                if i in used_t or j in used_f:
                    continue
                close = score >= iou_threshold or _centre_distance(live[i].last_box, faces[j].box) <= max_centre_shift
                if not close:
                    continue
                used_t.add(i)
                used_f.add(j)
                live[i].items.append((pos, faces[j]))
                last_seen[live[i].track_id] = pos
            unmatched = [j for j in range(len(faces)) if j not in used_f]
        for j in unmatched:
            t = FaceTrack(track_id=len(tracks), items=[(pos, faces[j])])
            tracks.append(t)
            last_seen[t.track_id] = pos
    return tracks


def select_tracks(tracks: list[FaceTrack], n_frames: int, max_tracks: int, min_fraction: float = 0.25) -> list[FaceTrack]:
    """Keep the largest, most consistent tracks; drop flickers (seen in < ``min_fraction`` of frames)."""
    if not tracks:
        return []
    need = max(1, int(np.ceil(min_fraction * n_frames))) if n_frames >= 4 else 1
    steady = [t for t in tracks if len(t) >= need] or [max(tracks, key=len)]
    steady.sort(key=lambda t: len(t) * np.sqrt(t.mean_area), reverse=True)
    kept = steady[:max_tracks]
    for new_id, t in enumerate(sorted(kept, key=lambda t: t.items[0][0])):
        t.track_id = new_id
    return sorted(kept, key=lambda t: t.track_id)

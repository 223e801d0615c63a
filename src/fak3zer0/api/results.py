"""Typed result objects returned by :class:`fak3zer0.Detector` and printed by ``fak3zer0 detect --json``.

JSON shape (one object per input)::

    {"path", "verdict": "real"|"fake"|"no_face"|"error", "fake_probability": float|null,
     "faces": [{"track_id", "fake_probability",
                "frames": [{"index", "time_s", "box": [x1, y1, x2, y2], "fake_probability"}]}],
     "frames_used", "model", "seconds", "error": null|"message"}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["real", "fake", "no_face", "error"]
VERDICTS: tuple[str, ...] = ("real", "fake", "no_face", "error")


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


@dataclass
class FrameScore:
    """One face in one sampled frame."""

    index: int
    time_s: float
    box: tuple[float, float, float, float]
    fake_probability: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": int(self.index),
            "time_s": _r(self.time_s, 4),
            "box": [round(float(v), 1) for v in self.box],
            "fake_probability": _r(self.fake_probability),
        }


@dataclass
class FaceVerdict:
    """One tracked face across the sampled frames."""

    track_id: int
    fake_probability: float
    frames: list[FrameScore] = field(default_factory=list)
    heatmap: str | None = None  # path of the heatmap PNG when one was written

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "track_id": int(self.track_id),
            "fake_probability": _r(self.fake_probability),
            "frames": [f.to_dict() for f in self.frames],
        }
        if self.heatmap:
            d["heatmap"] = self.heatmap
        return d


@dataclass
class VideoVerdict:
    """The answer for one input file (a video, or an image treated as a one-frame video)."""

    path: str
    verdict: Verdict
    fake_probability: float | None
    faces: list[FaceVerdict] = field(default_factory=list)
    frames_used: int = 0
    model: str = ""
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict != "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "fake_probability": _r(self.fake_probability),
            "faces": [f.to_dict() for f in self.faces],
            "frames_used": int(self.frames_used),
            "model": self.model,
            "seconds": round(float(self.seconds), 3),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VideoVerdict":
        faces = [
            FaceVerdict(
                track_id=f["track_id"],
                fake_probability=f["fake_probability"],
                frames=[FrameScore(fr["index"], fr["time_s"], tuple(fr["box"]), fr["fake_probability"]) for fr in f["frames"]],
                heatmap=f.get("heatmap"),
            )
            for f in d.get("faces", [])
        ]
        return cls(d["path"], d["verdict"], d.get("fake_probability"), faces, d.get("frames_used", 0),
                   d.get("model", ""), d.get("seconds", 0.0), d.get("error"))

    @classmethod
    def failed(cls, path: str, message: str, *, model: str = "", seconds: float = 0.0) -> "VideoVerdict":
        return cls(path=path, verdict="error", fake_probability=None, model=model, seconds=seconds, error=message)

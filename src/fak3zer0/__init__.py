"""Fak3Zer0: offline deepfake detection for video and images."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Detector", "VideoVerdict", "FaceVerdict", "FrameScore", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import fak3zer0` stays light (no torch import until needed).
    if name in {"Detector", "VideoVerdict", "FaceVerdict", "FrameScore"}:
        from fak3zer0.api import detector, results

        return getattr(detector, name, None) or getattr(results, name)
    raise AttributeError(name)

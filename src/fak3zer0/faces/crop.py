"""Cut face crops out of frames: square, centred on the face, with a margin, at the model's size."""
from __future__ import annotations

import cv2
import numpy as np

from fak3zer0.defaults import CROP_MARGIN


def crop_transform(box: np.ndarray, size: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """2x3 affine matrix mapping frame pixels to a ``size`` x ``size`` crop of the box grown by ``margin``."""
    x1, y1, x2, y2 = [float(v) for v in box]
    side = max(x2 - x1, y2 - y1) * margin
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / max(side, 1e-6)
    return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], dtype=np.float64)


def crop_face(image: np.ndarray, box: np.ndarray, size: int, margin: float = CROP_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(crop, M)``: a size x size RGB crop (edges replicated past the frame) and its 2x3 transform."""
    m = crop_transform(box, size, margin)
    scale = m[0, 0]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if scale < 0.5:
        # Area-average big faces down in one step: cut the region first, then resize.
        x1, y1 = -m[0, 2] / scale, -m[1, 2] / scale
        side = size / scale
        h, w = image.shape[:2]
        ix1, iy1 = int(np.floor(x1)), int(np.floor(y1))
        ix2, iy2 = int(np.ceil(x1 + side)), int(np.ceil(y1 + side))
        pad = max(0, -ix1, -iy1, ix2 - w, iy2 - h)
        src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
        region = src[iy1 + pad:iy2 + pad, ix1 + pad:ix2 + pad]
        crop = cv2.resize(region, (size, size), interpolation=interp)
        m = np.array([[size / region.shape[1], 0, -ix1 * size / region.shape[1]],
                      [0, size / region.shape[0], -iy1 * size / region.shape[0]]])
        return np.ascontiguousarray(crop), m
    crop = cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]

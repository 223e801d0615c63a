"""Face detectors behind one interface: ``detect(rgb_image) -> list[FaceBox]``.

* ``mtcnn`` (default): accurate, finds small faces, five landmarks. Weights: facenet-pytorch's wheel.
* ``haar``: OpenCV's frontal-face Haar cascade; a floor that needs nothing but OpenCV 4.x;
  landmarks are estimated from the box (``FaceBox.landmarks_estimated``).

Large frames are downscaled to ``max_side`` for detection; boxes and landmarks come back in
full-resolution pixel coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from fak3zer0.defaults import DETECT_MAX_SIDE, DETECT_RETRY_MAX_SIDE, MIN_FACE_SIZE
from fak3zer0.errors import ModelError
from fak3zer0.faces.boxes import iou_matrix

#: Re-detection window around a known face (times the face's size) and the face size it is resampled to.
ROI_FACTOR = 2.0
ROI_FACE_PX = 64

#: Order of the five landmarks (image-left eye first, as seen in the picture).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: Mean five-point layout in a unit face box, used when a detector has no landmarks.
MEAN_FIVE_POINTS = np.array([[0.34, 0.42], [0.66, 0.42], [0.50, 0.60], [0.37, 0.77], [0.63, 0.77]])


@dataclass
class FaceBox:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in full-resolution pixels
    score: float
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((5, 2)))  # (5, 2) x, y
    landmarks_estimated: bool = False
    crop: np.ndarray | None = None  # face crop at the model's size, filled by the extractor
    interpolated: bool = False  # box/landmarks interpolated between two detections

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, scale


class MTCNNDetector:
    name = "mtcnn"

    def __init__(self, max_side: int = DETECT_MAX_SIDE, min_face_size: int = MIN_FACE_SIZE,
                 min_score: float = 0.7, retry_max_side: int | None = DETECT_RETRY_MAX_SIDE) -> None:
        from fak3zer0.faces.mtcnn import MTCNN

        self.net = MTCNN(min_face_size=min_face_size)
        # Re-detection around known faces: the face is resampled to ~ROI_FACE_PX, so only faces
        # of half that size or more need looking for.
        self.roi_net = MTCNN(min_face_size=ROI_FACE_PX // 2, nets=self.net)
        self.max_side, self.min_score = max_side, min_score
        self.retry_max_side = retry_max_side

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        faces = self._detect_at(image, self.max_side)
        if not faces and self.retry_max_side and max(image.shape[:2]) > self.max_side:
            faces = self._detect_at(image, self.retry_max_side)  # small faces need more pixels
        return faces

    def _detect_at(self, image: np.ndarray, max_side: int) -> list[FaceBox]:
        small, scale = _downscale(image, max_side)
        return self._faces(self.net.detect(small), scale, (0.0, 0.0), image.shape[:2])

    def _faces(self, found, scale: float, offset: tuple[float, float], shape) -> list[FaceBox]:
        """Detections in a resized (``scale``) region starting at ``offset`` -> full-frame FaceBoxes."""
        h, w = shape
        out = []
        shift = np.array([offset[0], offset[1]])
        for b, s, lm in zip(*found):
            if s < self.min_score:
                continue
            b = np.clip(b / scale + np.tile(shift, 2), [0, 0, 0, 0], [w, h, w, h])
            if b[2] - b[0] < 4 or b[3] - b[1] < 4:
                continue
            out.append(FaceBox(b, float(s), lm / scale + shift))
        return out

    def detect_near(self, image: np.ndarray, previous: list[FaceBox]) -> list[FaceBox] | None:
        """Find the faces of ``previous`` again, searching only around where they were.

        Each face is looked for in a square window of ``ROI_FACTOR`` times its size around its
        last box, resampled so the face is about ``ROI_FACE_PX`` pixels: a small pyramid instead of
        the whole frame's (measured 4-6x cheaper). Returns one box per previous face, in the same
        order, or None when any face is not found again (it moved far, turned away or left): the
        caller then runs the full :meth:`detect`, which also finds faces that came into view.
        """
        if not previous:
            return None
        h, w = image.shape[:2]
        out = []
        for prev in previous:
            x1, y1, x2, y2 = prev.box
            side = max(x2 - x1, y2 - y1)
            if side < 8:
                return None
            cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, side * ROI_FACTOR / 2
            rx1, ry1 = int(max(0, cx - half)), int(max(0, cy - half))
            rx2, ry2 = int(min(w, cx + half)), int(min(h, cy + half))
            if rx2 - rx1 < 12 or ry2 - ry1 < 12:
                return None
            scale = ROI_FACE_PX / side
            roi = cv2.resize(image[ry1:ry2, rx1:rx2],
                             (max(12, round((rx2 - rx1) * scale)), max(12, round((ry2 - ry1) * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            scale = roi.shape[1] / (rx2 - rx1)
            found = self._faces(self.roi_net.detect(roi), scale, (rx1, ry1), (h, w))
            if not found:
                return None
            best = max(found, key=lambda f: _iou(f.box, prev.box) + 0.01 * f.score)
            if _iou(best.box, prev.box) < 0.2:
                return None
            out.append(best)
        return out


class HaarDetector:
    name = "haar"

    def __init__(self, max_side: int = DETECT_MAX_SIDE, min_face_size: int = MIN_FACE_SIZE) -> None:
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise ModelError("this OpenCV build has no Haar cascades; install opencv-python-headless==4.14.0.94")
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ModelError(f"could not load Haar cascade {path}")
        self.max_side, self.min_face_size = max_side, min_face_size

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        small, scale = _downscale(image, self.max_side)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_face_size, self.min_face_size),
            outputRejectLevels=True)
        out = []
        for (x, y, w, h), wt in zip(rects, np.ravel(weights) if len(rects) else []):
            b = np.array([x, y, x + w, y + h], dtype=np.float64) / scale
            lm = b[:2] + MEAN_FIVE_POINTS * (b[2:] - b[:2])
            out.append(FaceBox(b, float(1 / (1 + np.exp(-wt))), lm, landmarks_estimated=True))
        return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(iou_matrix(a[None], b[None])[0, 0])


DETECTORS = {"mtcnn": MTCNNDetector, "haar": HaarDetector}


def build_face_detector(name: str = "mtcnn", **kwargs):
    """Create a face detector by name (``mtcnn`` or ``haar``)."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ModelError(f"unknown face detector {name!r}; choose from {sorted(DETECTORS)}") from None
    return cls(**kwargs)

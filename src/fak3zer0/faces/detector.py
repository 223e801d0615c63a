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

#: Looks O-Net takes at a known face's last box to find it again (``MTCNNDetector.detect_near``).
NEAR_PASSES = 2

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
        self.max_side, self.min_score = max_side, min_score
        self.retry_max_side = retry_max_side

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        faces = self._detect_at(image, self.max_side)
        if not faces and self.retry_max_side and max(image.shape[:2]) > self.max_side:
            faces = self._detect_at(image, self.retry_max_side)  # small faces need more pixels
        return faces

    def _detect_at(self, image: np.ndarray, max_side: int) -> list[FaceBox]:
        small, scale = _downscale(image, max_side)
        faces = (self._face_box(b, s, lm, scale, image.shape[:2]) for b, s, lm in zip(*self.net.detect(small)))
        return [f for f in faces if f is not None]

    def _face_box(self, box, score, landmarks, scale: float, shape) -> FaceBox | None:
        """One MTCNN detection in a frame resized by ``scale`` -> a full-frame FaceBox, or None when its
        score is under ``min_score`` or it keeps less than 4 px a side inside the frame."""
        h, w = shape
        b = np.clip(box / scale, [0, 0, 0, 0], [w, h, w, h])
        if score < self.min_score or b[2] - b[0] < 4 or b[3] - b[1] < 4:
            return None
        return FaceBox(b, float(score), landmarks / scale)

    def detect_near(self, image: np.ndarray, previous: list[FaceBox]) -> list[FaceBox] | None:
        """Find the faces of ``previous`` again where they were, with MTCNN's last stage alone.

        O-Net looks at each face's last box and moves it onto the face it sees there; a second
        look from the moved box settles box and landmarks. No pyramid, no search: on 159 pairs of
        dev-video frames 4 samples apart it took 6.4 ms per frame against 14 ms for a small
        search around the face, boxes matching whole-frame detection with mean IoU 0.92 (0.93).
        Returns one box per previous face, in the same order, or None when a face is not seen
        again (O-Net's score under ``min_score``, or the box moved off its last place): the caller
        then runs the full :meth:`detect`, which also finds faces that came into view.
        """
        if not previous:
            return None
        boxes = np.array([f.box for f in previous], dtype=np.float64)
        if (np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) < 8).any():
            return None
        for _ in range(NEAR_PASSES):
            boxes, scores, landmarks = self.net.refine(image, boxes)
        out = []
        for prev, b, sc, lm in zip(previous, boxes, scores, landmarks):
            face = self._face_box(b, sc, lm, 1.0, image.shape[:2])
            if face is None or _iou(face.box, prev.box) < 0.2:
                return None
            out.append(face)
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

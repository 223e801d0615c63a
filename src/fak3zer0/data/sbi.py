"""Self-blended images (SBI; Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022).

A training fake made from a single real face crop: a slightly altered copy of the face (colour
shift, sharpened or blurred, a little scaled and shifted) is blended back over the face through a
soft, face-shaped mask. The result carries the generic traces of face swapping — a blending
boundary, colour and frequency mismatch, a small misalignment — without any particular
generator's fingerprint, which is why detectors trained on it generalise across methods.

Torch-free: numpy + OpenCV. All randomness comes from the ``numpy.random.Generator`` passed in,
so a seed reproduces an example exactly.

``region="lower"`` is our extension for manipulations that re-render only the mouth and jaw
(lip-sync: Wav2Lip, VideoReTalking, IP_LAP; talking-head heads pasted back below the eyes): the
mask covers the lower face (nose tip to chin), and the altered copy always loses resolution (those
generators render the mouth at 96-256 px) and may open or close the mouth a little.

The paper builds its mask from the convex hull of 81 (or 68) landmarks. Our cache stores
MTCNN's five points (eyes, nose tip, mouth corners), whose hull is a small pentagon, so with five
points the hull is grown into a face-shaped ellipse from brows to chin, oriented along the eye
line; with 68/81 points their hull is used as in the paper. The mask is then elastically deformed,
blurred, and scaled by a random blend ratio.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
REGIONS = ("face", "lower")


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# ------------------------------------------------------------------ mask

def _jitter(rng: np.random.Generator | None):
    """``jitter(lo, hi)``: a uniform draw from ``rng``, or the middle of the range without one."""
    if rng is None:
        return lambda lo, hi: (lo + hi) / 2
    return lambda lo, hi: _u(rng, lo, hi)


def _face_axes(lm: np.ndarray):
    """Eye centre, mouth centre, eye distance, eye-mouth distance and the face's right / up unit
    vectors from five landmarks; None when the points are degenerate."""
    left_eye, right_eye, _nose, mouth_l, mouth_r = lm
    eye_c, mouth_c = (left_eye + right_eye) / 2, (mouth_l + mouth_r) / 2
    eye_vec = right_eye - left_eye
    d_eye = float(np.linalg.norm(eye_vec))
    d_em = float(np.linalg.norm(mouth_c - eye_c))
    if d_eye < 1e-3 or d_em < 1e-3:
        return None
    right = eye_vec / d_eye
    up = np.array([right[1], -right[0]])  # perpendicular to the eye line
    if np.dot(up, eye_c - mouth_c) < 0:
        up = -up
    return eye_c, mouth_c, d_eye, d_em, right, up


def _ellipse(top: np.ndarray, bottom: np.ndarray, half_w: float, right: np.ndarray, up: np.ndarray,
             n: int) -> np.ndarray:
    centre = (top + bottom) / 2
    half_h = float(np.linalg.norm(top - bottom)) / 2
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + np.outer(np.cos(t) * half_w, right) + np.outer(np.sin(t) * half_h, up)


def face_region_points(landmarks: np.ndarray, rng: np.random.Generator | None = None, n: int = 40) -> np.ndarray:
    """Points outlining the face (brows to chin) from five landmarks; the landmarks themselves if more.

    With ``rng`` the outline's width, height and brow line vary a little between calls.
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    axes = _face_axes(lm) if len(lm) == 5 else None
    if axes is None:
        return lm
    jitter = _jitter(rng)
    eye_c, mouth_c, d_eye, d_em, right, up = axes
    top = eye_c + up * d_em * jitter(0.55, 0.85)       # brow line / lower forehead
    bottom = mouth_c - up * d_em * jitter(0.55, 0.85)  # chin
    return np.vstack([_ellipse(top, bottom, d_eye * jitter(0.95, 1.15), right, up, n), lm])


def lower_face_points(landmarks: np.ndarray, rng: np.random.Generator | None = None,
                      n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Outline of the lower face (nose tip to chin, cheek to cheek) and the landmarks inside it.

    Five points: an ellipse from just above the nose tip to the chin, about as wide as the eyes
    are apart, plus the nose tip and mouth corners. More points: those below the landmarks' centre
    (jaw, mouth, lower nose for 68/81 points). Returns ``(outline, core)``; ``core`` must stay inside
    the mask.
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(lm) != 5:
        below = lm[lm[:, 1] >= lm[:, 1].mean()]
        return (below, below) if len(below) >= 3 else (lm, lm)
    core = lm[2:]
    axes = _face_axes(lm)
    if axes is None:
        return core, core
    jitter = _jitter(rng)
    _eye_c, mouth_c, d_eye, d_em, right, up = axes
    top = lm[2] + up * d_em * jitter(0.0, 0.25)        # at or a little above the nose tip
    bottom = mouth_c - up * d_em * jitter(0.55, 0.85)  # chin
    return np.vstack([_ellipse(top, bottom, d_eye * jitter(0.8, 1.05), right, up, n), core]), core


def _region(landmarks: np.ndarray, rng: np.random.Generator, region: str) -> tuple[np.ndarray, np.ndarray]:
    if region == "face":
        return face_region_points(landmarks, rng), landmarks
    if region == "lower":
        return lower_face_points(landmarks, rng)
    raise ValueError(f"region must be one of {REGIONS}, not {region!r}")


def _fill_hull(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    pts = np.round(points).astype(np.int32)
    if len(pts) >= 3:
        cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1)
    else:
        for x, y in pts:
            cv2.circle(mask, (int(x), int(y)), 2, 1, -1)
    return mask


def _elastic(mask: np.ndarray, rng: np.random.Generator, strength: float, smooth: float) -> np.ndarray:
    """Warp a binary mask by a smooth random displacement field (``strength`` pixels, ``smooth`` sigma)."""
    h, w = mask.shape
    grid = 8  # draw the field coarse, then upsample: smooth and cheap
    field = rng.uniform(-1, 1, size=(2, grid, grid)).astype(np.float32)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    k = max(3, int(smooth) | 1)
    dx = cv2.GaussianBlur(dx, (k, k), 0) * strength
    dy = cv2.GaussianBlur(dy, (k, k), 0) * strength
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(mask.astype(np.float32), xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return (warped > 0.5).astype(np.uint8)


def blend_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator,
               region: str = "face") -> np.ndarray:
    """Soft mask in [0, 1] (float32, H x W) over the face or its lower part (``region``): grown hull,
    elastic deformation, blur (no blend ratio)."""
    h, w = shape
    size = float(min(h, w))
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    outline, core = _region(lm, rng, region)
    area = _fill_hull((h, w), outline)
    area = _elastic(area, rng, strength=_u(rng, 0.01, 0.04) * size, smooth=0.1 * size)
    if rng.random() < 0.5:  # sometimes pull the boundary in, so the seam falls inside the face
        k = max(1, int(round(_u(rng, 0.01, 0.04) * size)))
        area = cv2.erode(area, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    # The deformation only moves the outline: the landmarks' own hull always stays inside.
    area = np.maximum(area, _fill_hull((h, w), core))
    sigma = _u(rng, 0.015, 0.05) * size
    k = int(2 * round(3 * sigma) + 1)
    soft = cv2.GaussianBlur(area.astype(np.float32), (k, k), sigma)
    soft /= max(float(soft.max()), 1e-6)
    if rng.random() < 0.5:  # a harder edge: stretch the ramp and clip
        soft = np.clip(soft * _u(rng, 1.0, 1.6), 0.0, 1.0)
    soft[soft < 1.0 / 255] = 0.0
    return soft.astype(np.float32)


# ------------------------------------------------------------------ source alteration

def _colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Shift colour, hue, saturation, brightness and contrast; ``strength`` scales every range."""
    out = img.astype(np.float32)
    out += rng.uniform(-20, 20, size=3).astype(np.float32) * strength  # per-channel shift
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-3, 3) * strength) % 180
    hsv[..., 1] *= 1 + rng.uniform(-0.15, 0.15) * strength
    hsv[..., 2] *= 1 + rng.uniform(-0.1, 0.1) * strength
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    contrast = 1 + rng.uniform(-0.15, 0.15) * strength
    out = (out - out.mean()) * contrast + out.mean() + rng.uniform(-10, 10) * strength
    return np.clip(out, 0, 255).astype(np.uint8)


def _frequency(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    choice = rng.integers(3)
    if choice == 0:  # sharpen (unsharp mask)
        blur = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
        amount = rng.uniform(0.3, 1.0)
        sharp = img.astype(np.float32) * (1 + amount) - blur.astype(np.float32) * amount
        return np.clip(sharp, 0, 255).astype(np.uint8)
    if choice == 1:  # blur
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    s = rng.uniform(0.4, 0.85)  # lose detail: down- then up-scale, as a lower-resolution swap would
    small = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _shift_scale(img: np.ndarray, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.03, 0.03, size=2) * np.array([w, h])
    m = np.array([[s, 0, (1 - s) * centre[0] + tx], [0, s, (1 - s) * centre[1] + ty]], dtype=np.float64)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def _rerendered(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lose resolution as a generator rendering the mouth at 96-256 px would: down- then up-scale."""
    h, w = img.shape[:2]
    s = rng.uniform(0.3, 0.7)
    small = cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)


def _mouth_stretch(img: np.ndarray, mouth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch or squash the image vertically about the mouth: a slightly different mouth opening."""
    h, w = img.shape[:2]
    sy = rng.uniform(0.94, 1.08)
    m = np.array([[1, 0, 0], [0, sy, (1 - sy) * mouth[1]]], dtype=np.float64)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def altered_source(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                   region: str = "face") -> np.ndarray:
    """The face's altered copy: colour jitter, then sharpen/blur/downscale (always a resolution loss
    and a small mouth stretch for ``region="lower"``), then a small scale + shift."""
    # lip-sync and talking-head generators keep the face's colours far better than a face swap
    src = _colour_jitter(crop, rng, 0.4 if region == "lower" else 1.0)
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    centre = lm.mean(axis=0) if len(lm) else np.array([crop.shape[1] / 2, crop.shape[0] / 2])
    if region == "lower":
        src = _rerendered(src, rng)
        mouth = lm[3:5].mean(axis=0) if len(lm) == 5 else centre
        src = _mouth_stretch(src, mouth, rng)
    else:
        src = _frequency(src, rng)
    return _shift_scale(src, centre, rng)


# ------------------------------------------------------------------ public API

def self_blend(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
               region: str = "face") -> tuple[np.ndarray, np.ndarray]:
    """Make a self-blended fake from a real face crop, blended over the whole face or (``region="lower"``)
    over the mouth and jaw only.

    ``crop``: H x W x 3 uint8 (RGB); ``landmarks``: (P, 2) points in crop pixels (P = 5 MTCNN
    points as stored in the cache, or 68/81). Returns ``(image, mask)``: the blended uint8 image and
    the float32 H x W blend weight in [0, 1] actually used (blend ratio included). Pixels where
    ``mask == 0`` are exactly the input's.
    """
    crop = np.ascontiguousarray(crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"self_blend wants an H x W x 3 uint8 crop, got {crop.shape} {crop.dtype}")
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(lm) < 3:
        raise ValueError(f"self_blend needs at least 3 landmarks, got {len(lm)}")
    h, w = crop.shape[:2]
    mask = blend_mask((h, w), lm, rng, region) * np.float32(BLEND_RATIOS[int(rng.integers(len(BLEND_RATIOS)))])
    src = altered_source(crop, lm, rng, region)
    a = mask[..., None]
    blended = np.clip(np.round(src.astype(np.float32) * a + crop.astype(np.float32) * (1 - a)), 0, 255).astype(np.uint8)
    image = np.where(a > 0, blended, crop)
    return image, mask.astype(np.float32)


def region_mix(lower_share: float) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """A ``self_blend`` that blends over the lower face with probability ``lower_share``, else the face.

    The region is drawn first from the ``rng`` it is given, so calls with equally seeded generators
    (the frames of one training clip) agree on it.
    """
    if not 0.0 <= lower_share <= 1.0:
        raise ValueError(f"lower_share must be in [0, 1], not {lower_share}")

    def blend(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        region = "lower" if rng.random() < lower_share else "face"
        return self_blend(crop, landmarks, rng, region)

    return blend

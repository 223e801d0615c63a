"""Self-blended images: mask, locality of the change, landmark coverage, determinism, variety."""
from __future__ import annotations

import numpy as np
import pytest

from fak3zer0.data.sbi import blend_mask, face_region_points, lower_face_points, region_mix, self_blend
from fak3zer0.faces import crop_face, transform_points

# MTCNN's box and five points on skimage's astronaut photo (public domain), fixed so no detector runs here.
_BOX = np.array([178.2, 57.7, 267.3, 174.9])
_FIVE = np.array([[203.8, 99.8], [246.9, 102.9], [224.9, 128.2], [201.2, 139.0], [245.3, 141.5]])


@pytest.fixture(scope="module")
def face():
    from skimage import data

    crop, m = crop_face(data.astronaut(), _BOX, 128, 1.3)
    return crop, transform_points(_FIVE, m)


def test_shapes_dtypes_range(face):
    crop, lm = face
    img, mask = self_blend(crop, lm, np.random.default_rng(0))
    assert img.shape == crop.shape and img.dtype == np.uint8
    assert mask.shape == crop.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0 and mask.max() > 0.2


@pytest.mark.parametrize("seed", range(8))
def test_change_only_inside_mask_and_mask_covers_landmarks(face, seed):
    crop, lm = face
    img, mask = self_blend(crop, lm, np.random.default_rng(seed))
    outside = mask == 0
    assert outside.any() and (~outside).any()
    assert np.array_equal(img[outside], crop[outside])
    changed = np.any(img != crop, axis=2)
    assert changed.any()
    assert not (changed & outside).any()
    for x, y in np.round(lm).astype(int):
        assert mask[y, x] > 0, f"landmark ({x}, {y}) outside the mask"
    # the mask is face-sized: bigger than the landmarks' pentagon, smaller than the crop
    assert 0.1 < (mask > 0).mean() < 0.9


def test_deterministic_for_a_seed(face):
    crop, lm = face
    a = self_blend(crop, lm, np.random.default_rng(123))
    b = self_blend(crop, lm, np.random.default_rng(123))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_varies_across_seeds(face):
    crop, lm = face
    outs = [self_blend(crop, lm, np.random.default_rng(s)) for s in range(6)]
    images = {o[0].tobytes() for o in outs}
    masks = {o[1].tobytes() for o in outs}
    assert len(images) == 6 and len(masks) == 6
    areas = [float((o[1] > 0).mean()) for o in outs]
    assert max(areas) - min(areas) > 0.01


def test_input_is_not_modified(face):
    crop, lm = face
    before = crop.copy()
    self_blend(crop, lm, np.random.default_rng(1))
    assert np.array_equal(crop, before)


def test_many_landmarks_use_their_hull():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([64 + 30 * np.cos(t), 64 + 38 * np.sin(t)], axis=1)
    assert face_region_points(lm).shape == (68, 2)
    mask = blend_mask((128, 128), lm, rng)
    assert mask[64, 64] > 0.5 and mask[2, 2] == 0
    crop = rng.integers(0, 255, size=(128, 128, 3), dtype=np.uint8)
    img, m = self_blend(crop, lm, rng)
    assert np.array_equal(img[m == 0], crop[m == 0])


def test_five_point_region_grows_past_the_landmarks(face):
    _, lm = face
    pts = face_region_points(lm)
    assert pts[:, 1].min() < lm[:2, 1].min() - 5  # above the eyes
    assert pts[:, 1].max() > lm[3:, 1].max() + 5  # below the mouth


def test_rejects_bad_input(face):
    crop, lm = face
    with pytest.raises(ValueError):
        self_blend(crop.astype(np.float32), lm, np.random.default_rng(0))
    with pytest.raises(ValueError):
        self_blend(crop, lm[:2], np.random.default_rng(0))
    with pytest.raises(ValueError, match="region"):
        self_blend(crop, lm, np.random.default_rng(0), region="eyes")
    with pytest.raises(ValueError):
        region_mix(1.5)


@pytest.mark.parametrize("seed", range(6))
def test_lower_region_covers_mouth_and_nose_not_the_eyes(face, seed):
    crop, lm = face
    img, mask = self_blend(crop, lm, np.random.default_rng(seed), region="lower")
    changed = np.any(img != crop, axis=2)
    assert changed.any() and not (changed & (mask == 0)).any()
    for x, y in np.round(lm[2:]).astype(int):  # nose tip, mouth corners
        assert mask[y, x] > 0
    for x, y in np.round(lm[:2]).astype(int):  # eyes untouched
        assert mask[y, x] == 0
    # smaller than a whole-face blend from the same seed
    _, face_mask = self_blend(crop, lm, np.random.default_rng(seed))
    assert 0.02 < (mask > 0).mean() < (face_mask > 0).mean()


def test_lower_region_loses_detail(face):
    crop, lm = face
    gray = lambda im: im.astype(np.float32).mean(axis=2)
    def detail(im, m):  # high-frequency energy where the blend is full
        g = gray(im)
        lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])
        return float(lap[m[1:-1, 1:-1] > 0.99].mean())
    drops = []
    for seed in range(6):
        img, mask = self_blend(crop, lm, np.random.default_rng(seed), region="lower")
        if (mask > 0.99).sum() > 50:
            drops.append(detail(img, mask) / detail(crop, mask))
    assert drops and max(drops) < 0.9


def test_lower_face_points_from_five_and_many_landmarks(face):
    _, lm = face
    outline, core = lower_face_points(lm)
    assert np.array_equal(core, lm[2:])
    assert outline[:, 1].min() > lm[:2, 1].max()  # starts below the eyes
    assert outline[:, 1].max() > lm[3:, 1].max() + 5  # reaches past the mouth, to the chin
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    many = np.stack([64 + 30 * np.cos(t), 64 + 38 * np.sin(t)], axis=1)
    outline, core = lower_face_points(many)
    assert len(outline) < 68 and outline[:, 1].min() >= many[:, 1].mean()


def test_region_mix_draws_the_region_from_the_rng(face):
    crop, lm = face
    lower_only, face_only = region_mix(1.0), region_mix(0.0)
    a = lower_only(crop, lm, np.random.default_rng(5))[1]
    b = face_only(crop, lm, np.random.default_rng(5))[1]
    assert (a > 0).mean() < (b > 0).mean()
    mixed = region_mix(0.5)
    areas = {round(float((mixed(crop, lm, np.random.default_rng(s))[1] > 0).mean()), 3) for s in range(12)}
    assert len(areas) > 1
    # equally seeded calls (the frames of one clip) agree on the region and the blend
    assert np.array_equal(mixed(crop, lm, np.random.default_rng(9))[0], mixed(crop, lm, np.random.default_rng(9))[0])

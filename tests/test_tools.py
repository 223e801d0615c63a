"""The default recipe's data loading (fak3zer0.train.recipe, used by tools/train_default.py): face-mesh landmarks for self-blend masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fak3zer0.data.sbi import blend_mask
from fak3zer0.train.recipe import load_crops


def _write_mesh(cache: Path, missing: set[int]) -> None:
    """A mesh sidecar per entry: a ring of 468 points around the crop centre, NaN for ``missing`` entries."""
    (cache / "mesh468").mkdir()
    angle = np.linspace(0, 2 * np.pi, 468, endpoint=False)
    ring = np.stack([32 + 24 * np.cos(angle), 32 + 28 * np.sin(angle)], 1).astype(np.float32)
    for i in range(60):
        marks = np.full((1, 468, 2), np.nan, np.float32) if i in missing else ring[None]
        np.savez_compressed(cache / "mesh468" / f"e{i}.npz", landmarks=marks)


def test_mesh_landmarks_replace_the_five_points_where_found(crop_cache):
    _write_mesh(crop_cache, missing={3})
    crops, marks, labels, groups, _ = load_crops([crop_cache], 32, None, None, 1, mesh=True)
    assert len(marks) == len(crops) == 60 and labels.tolist() == [i % 2 for i in range(60)]  # index order
    assert [len(m) for m in marks].count(468) == 59 and len(marks[3]) == 5  # no mesh there: five points kept
    assert np.allclose(marks[0].max(0), [(32 + 24) / 2, (32 + 28) / 2], atol=0.1)  # scaled to the 32 px crops
    five = load_crops([crop_cache], 32, None, None, 1)[1]
    assert five.shape == (60, 5, 2) and np.allclose(marks[3], five[3])
    # the mesh hull is the mask's outline: it reaches what the ring covers and not the crop's corner
    mask = blend_mask((32, 32), marks[0], np.random.default_rng(0))
    assert mask[16, 16] > 0.9 and mask[16, 4] > 0 and mask[0, 0] == 0


def test_mesh_without_sidecars_says_how_to_make_them(crop_cache):
    with pytest.raises(SystemExit, match="mesh_landmarks.py"):
        load_crops([crop_cache], 32, None, None, 1, mesh=True)

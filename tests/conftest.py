"""Shared fixtures: tiny generated media, the shared dev data (skipped when absent), a tiny checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

from fak3zer0.paths import dev_data_dir  # noqa: E402


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Generated demo media: astronaut.png, astronaut_pan.mp4, astronaut_rotated.mp4, no_face.png."""
    from fak3zer0.samples import make_samples

    out = tmp_path_factory.mktemp("media")
    make_samples(out)
    return out


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    d = dev_data_dir()
    if d is None:
        pytest.skip("../shared/data/dev is not present on this machine")
    return d


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained Meso4 checkpoint: exercises the full pipeline without shipped weights."""
    from fak3zer0.models import create_model
    from fak3zer0.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_model("meso4").eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny_meso4.pt"
    save_checkpoint(path, model, metrics={"note": "untrained, for tests"})
    return path


def write_crop_cache(root: Path, n: int = 60, size: int = 64) -> Path:
    """A tiny face-crop cache in the documented format (docs/cache-format.md): one crop per entry,
    every other one fake (and redder), a leakage group per real/fake pair, five landmarks each."""
    import json

    rng = np.random.default_rng(0)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    lines = []
    five = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]], np.float32) * size
    for i in range(n):
        label = i % 2
        crops = rng.integers(0, 255, (1, size, size, 3), dtype=np.uint8)
        crops[..., 0] = np.clip(crops[..., 0].astype(int) + 60 * label, 0, 255)
        name = f"crops/e{i}.npz"
        np.savez(root / name, crops=crops, landmarks=five[None])
        lines.append(json.dumps({"key": f"e{i}", "status": "ok", "file": name, "label": label,
                                 "group": f"g{i // 2}", "source": "synthetic", "kind": "image"}))
    (root / "index.jsonl").write_text("\n".join(lines) + "\n")
    return root


VIDEO_CROP = 72
FIVE_POINTS = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]], np.float32)


def write_video_cache(root: Path, n_videos: int = 12, crops: int = 4, seed: int = 0, n_val: int = 4,
                      sources: int = 1) -> Path:
    """A face-crop cache of videos per docs/cache-format.md: cache.json, index.jsonl, crops/ab/<key>.npz.
    Reals are noise, fakes carry a grid; video 0 has two face tracks. With ``sources`` > 1 video v
    comes from source ``s{v % sources}``, else every video from ``test``."""
    import hashlib
    import json

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    (root / "cache.json").write_text(json.dumps({
        "format": "fak3zer0.cache", "version": 1, "crop_size": VIDEO_CROP, "margin": 1.3, "frames": crops,
        "face_detector": "test", "max_tracks": 2, "created": "test", "source": {}}))
    lines = []
    for v in range(n_videos):
        label = v % 2
        key = hashlib.sha1(f"{seed}/v{v}.mp4".encode()).hexdigest()
        n_tracks = 2 if v == 0 else 1  # one video with two faces
        k = crops * n_tracks
        img = rng.integers(0, 256, (k, VIDEO_CROP, VIDEO_CROP, 3), dtype=np.uint8)
        if label:
            img[:, ::6] = 255
            img[:, :, ::6, 1] = 0
        lm = np.tile(FIVE_POINTS * VIDEO_CROP, (k, 1, 1)) + rng.normal(0, 1, (k, 5, 2)).astype(np.float32)
        rel = f"crops/{key[:2]}/{key}.npz"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.savez(root / rel, crops=img, boxes=np.zeros((k, 4), np.float32), landmarks=lm.astype(np.float32),
                 frame_index=np.tile(np.arange(crops) * 10, n_tracks).astype(np.int32),
                 time_s=np.zeros(k, np.float32), track_id=np.repeat(np.arange(n_tracks), crops).astype(np.int16))
        lines.append({"key": key, "path": f"/data/v{v}.mp4", "video_id": f"v{v}", "label": label, "group": f"g{v}",
                      "split": "val" if v >= n_videos - n_val else "train", "source": f"s{v % sources}" if sources > 1 else "test",
                      "method": "grid" if label else "none", "kind": "video", "status": "ok", "error": None,
                      "n_crops": k, "file": rel})
    lines.append({"key": "x", "path": "/data/noface.mp4", "video_id": "noface", "label": 0, "group": "gx",
                  "split": "train", "source": "test", "method": "none", "kind": "video", "status": "no_face",
                  "error": None, "n_crops": 0, "file": None})
    (root / "index.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


@pytest.fixture()
def crop_cache(tmp_path) -> Path:
    return write_crop_cache(tmp_path / "cache")

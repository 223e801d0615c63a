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


@pytest.fixture()
def crop_cache(tmp_path) -> Path:
    return write_crop_cache(tmp_path / "cache")

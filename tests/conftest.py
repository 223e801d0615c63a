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

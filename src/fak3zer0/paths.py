"""Where offline files live: shared data, weight folders, packaged checkpoints."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_WEIGHTS = PACKAGE_DIR / "weights"


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the project root, or ``$FAK3ZER0_SHARED_DATA``; None when absent."""
    env = os.environ.get("FAK3ZER0_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [
        PACKAGE_DIR.parents[2] / "shared" / "data",  # src/fak3zer0 -> repo -> ../shared/data
        Path.cwd().parent / "shared" / "data",
        Path.cwd() / "shared" / "data",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def dev_data_dir() -> Path | None:
    root = shared_data_dir()
    return root / "dev" if root and (root / "dev" / "manifest.csv").is_file() else None


def weights_dir() -> Path | None:
    """Folder of third-party weight files (e.g. MesoNet's Keras .h5), or ``$FAK3ZER0_WEIGHTS``."""
    env = os.environ.get("FAK3ZER0_WEIGHTS")
    if env and Path(env).is_dir():
        return Path(env)
    root = shared_data_dir()
    return root / "weights" if root and (root / "weights").is_dir() else None

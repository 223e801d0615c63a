"""Training: configs, cache datasets, augmentations, the training loop.

``from fak3zer0.train import train, train_from_cli`` (loaded lazily so that importing the
package does not import torch).
"""
from __future__ import annotations

_LAZY = {
    "train": "trainer", "train_from_cli": "trainer", "finalize_best": "trainer",
    "resolve_config": "config", "apply_overrides": "config", "parse_override": "config",
    "load_config_file": "config", "DEFAULTS": "config",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"fak3zer0.train.{_LAZY[name]}"), name)
    raise AttributeError(name)

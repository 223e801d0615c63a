"""Checkpoint format: weights + everything needed to rebuild and use the model.

A checkpoint is a ``torch.save`` dict of plain types and tensors only, so it loads with
``torch.load(weights_only=True)`` (no arbitrary unpickling)::

    {"format": "fak3zer0.checkpoint", "format_version": 1,
     "model": "meso4", "config": {...builder kwargs...}, "input_spec": {...},
     "state_dict": {...}, "metrics": {...}, "calibration": {"temperature": 1.0},
     "aggregation": "mean", "threshold": 0.5, "meta": {...free-form, JSON-able...}}
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fak3zer0.errors import ModelError

FORMAT = "fak3zer0.checkpoint"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A ready-to-use model plus what its checkpoint says about it."""

    model: torch.nn.Module
    name: str
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    aggregation: str = "mean"
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    #: Short content hash of the weights; results are keyed by (model, version).
    version: str = ""
    #: The checkpoint file it came from ("" when built in memory).
    path: str = ""

    @property
    def input_spec(self):
        return self.model.input_spec


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel / DataParallel


def checkpoint_dict(
    model: torch.nn.Module,
    *,
    metrics: dict[str, Any] | None = None,
    temperature: float = 1.0,
    aggregation: str = "mean",
    threshold: float = 0.5,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model = _unwrap(model)
    name = getattr(model, "registry_name", None)
    if not name:
        raise ModelError("only models built with fak3zer0.models.create_model can be checkpointed")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": name,
        "config": dict(getattr(model, "model_config", {})),
        "input_spec": model.input_spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": dict(metrics or {}),
        "calibration": {"temperature": float(temperature)},
        "aggregation": aggregation,
        "threshold": float(threshold),
        "meta": dict(meta or {}),
    }


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path: str | Path, model: torch.nn.Module, **kwargs: Any) -> Path:
    atomic_torch_save(checkpoint_dict(model, **kwargs), path)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not ours / unsafe"
        raise ModelError(f"{path} is not a loadable fak3zer0 checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path} is not a fak3zer0 checkpoint (no '{FORMAT}' header)")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{path} was written by a newer fak3zer0 (format {ckpt['format_version']}); upgrade")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "") -> LoadedModel:
    from fak3zer0.models import create_model

    model = create_model(ckpt["model"], **ckpt.get("config", {}))
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise ModelError(f"checkpoint {source or ''} does not match model {ckpt['model']!r}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return LoadedModel(
        model=model,
        name=ckpt["model"],
        config=ckpt.get("config", {}),
        metrics=ckpt.get("metrics", {}),
        temperature=float(ckpt.get("calibration", {}).get("temperature", 1.0)),
        aggregation=ckpt.get("aggregation", "mean"),
        threshold=float(ckpt.get("threshold", 0.5)),
        meta=ckpt.get("meta", {}),
        source=source,
    )


def file_digest(path: str | Path, length: int = 12) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def load_checkpoint(path: str | Path) -> LoadedModel:
    loaded = model_from_checkpoint(read_checkpoint(path), source=str(path))
    loaded.version = file_digest(path)
    loaded.path = str(path)
    return loaded

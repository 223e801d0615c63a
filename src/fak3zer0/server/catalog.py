"""The models a server offers: public names (what clients send and see) mapped to model specs.

Clients choose a model by its public name only; a name that is not in the catalogue is refused,
so no client-supplied string ever reaches the file system as a checkpoint path.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fak3zer0.errors import ModelError
from fak3zer0.paths import PACKAGED_WEIGHTS

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ckpt"}


@dataclass
class CatalogEntry:
    name: str      # public name
    spec: str      # what the Detector is given (absolute checkpoint path, shipped name, arch:weights)
    source: str    # checkpoint | shipped | registry
    checkpoint: Path | None = None
    info: dict[str, Any] | None = field(default=None, repr=False)


def _shipped() -> dict[str, Path]:
    if not PACKAGED_WEIGHTS.is_dir():
        return {}
    return {p.stem: p for p in sorted(PACKAGED_WEIGHTS.glob("*.pt"))}


def _entry(spec: str, shipped: dict[str, Path]) -> CatalogEntry:
    path = Path(spec).expanduser()
    if path.suffix in CHECKPOINT_SUFFIXES or path.exists():
        if not path.is_file():
            raise ModelError(f"checkpoint not found: {path}")
        path = path.resolve()
        return CatalogEntry(path.stem, str(path), "checkpoint", path)
    if spec in shipped:
        return CatalogEntry(spec, spec, "shipped", shipped[spec])
    arch, _, tag = spec.partition(":")
    from fak3zer0.models import REGISTRY

    if arch in REGISTRY and tag:
        return CatalogEntry(spec, spec, "registry")
    raise ModelError(
        f"unknown model {spec!r}: not a checkpoint file, not a shipped model ({', '.join(shipped) or 'none shipped'}), "
        "not ARCH:WEIGHTS; pass --model with a checkpoint path (see `fak3zer0 models`)"
    )


class ModelCatalog:
    """Configured models (first = default) plus every shipped model."""

    def __init__(self, specs: list[str]) -> None:
        shipped = _shipped()
        self.entries: dict[str, CatalogEntry] = {}
        seen_specs: set[str] = set()
        for spec in list(specs):
            entry = _entry(spec, shipped)
            if entry.spec in seen_specs:
                continue
            seen_specs.add(entry.spec)
            name, k = entry.name, 2
            while name in self.entries:
                name, k = f"{entry.name}-{k}", k + 1
            entry.name = name
            self.entries[name] = entry
        for name, path in shipped.items():
            if name not in self.entries and name not in seen_specs:
                self.entries[name] = CatalogEntry(name, name, "shipped", path)
        self.default = next(iter(self.entries))
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> CatalogEntry | None:
        return self.entries.get(name)

    def describe(self, name: str) -> dict[str, Any]:
        """Architecture, version (weights digest), threshold; reads the checkpoint once (cached)."""
        entry = self.entries[name]
        with self._lock:
            if entry.info is None:
                entry.info = self._read(entry)
            return dict(entry.info, name=entry.name, source=entry.source, default=entry.name == self.default)

    @staticmethod
    def _read(entry: CatalogEntry) -> dict[str, Any]:
        if entry.checkpoint is None:  # arch:weights from the registry
            arch, _, tag = entry.spec.partition(":")
            return {"architecture": arch, "version": tag, "threshold": 0.5, "description": ""}
        from fak3zer0.models.checkpoint import file_digest, read_checkpoint

        ck = read_checkpoint(entry.checkpoint)
        return {
            "architecture": str(ck.get("model", "")),
            "version": file_digest(entry.checkpoint),
            "threshold": float(ck.get("threshold", 0.5)),
            "description": str(ck.get("meta", {}).get("description", "")),
        }

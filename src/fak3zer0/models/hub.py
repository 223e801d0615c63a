"""Resolve ``--model`` values: a checkpoint path, a shipped model name, or ``arch[:weights]``.

Shipped models are checkpoints inside the package (``fak3zer0/weights/<name>.pt``);
everything is offline.
"""
from __future__ import annotations

from pathlib import Path

from fak3zer0.errors import ModelError
from fak3zer0.models.checkpoint import LoadedModel, load_checkpoint
from fak3zer0.paths import PACKAGED_WEIGHTS


def shipped_models() -> dict[str, Path]:
    """Name -> checkpoint file for every model shipped inside the package."""
    if not PACKAGED_WEIGHTS.is_dir():
        return {}
    return {p.stem: p for p in sorted(PACKAGED_WEIGHTS.glob("*.pt"))}


def model_card(name: str) -> Path | None:
    """The model card (``<name>.md`` beside the checkpoint) of a shipped model; None for anything else."""
    path = shipped_models().get(name)
    card = path.with_suffix(".md") if path is not None else None
    return card if card is not None and card.is_file() else None


def resolve_model(spec: str) -> LoadedModel:
    """Load a model from a checkpoint path, a shipped name, or ``registry_name[:pretrained_tag]``."""
    from fak3zer0.models import REGISTRY, create_model

    path = Path(spec).expanduser()
    if path.suffix in {".pt", ".pth", ".ckpt"} or path.exists():
        return load_checkpoint(path)
    shipped = shipped_models()
    if spec in shipped:
        loaded = load_checkpoint(shipped[spec])
        loaded.source = spec
        return loaded
    arch, _, tag = spec.partition(":")
    if arch in REGISTRY:
        model = create_model(arch, pretrained=tag or None).eval()
        if not tag:
            raise ModelError(
                f"model {arch!r} has no trained weights unless you name them: use a checkpoint "
                f"path, '{arch}:<weights>' (available: {REGISTRY.entry(arch).weights_available() or 'none'}), "
                f"or a shipped model ({', '.join(shipped) or 'none'})"
            )
        return LoadedModel(model=model, name=arch, config={}, source=spec, version=tag)
    raise ModelError(
        f"unknown model {spec!r}: not a file, not a shipped model ({', '.join(shipped) or 'none'}), "
        f"not a registered architecture (see `fak3zer0 models`)"
    )

"""Model registry: one decorator per architecture, one factory for all.

A new model is one file with a builder function decorated by :func:`register_model`
plus one import line in ``fak3zer0/models/__init__.py``.

Conventions every registered model follows:

* ``forward(x)`` returns one *fake* logit per sample, shape ``(B,)``;
  ``sigmoid(logit)`` is the fake probability before calibration.
* ``model.input_spec`` (an :class:`InputSpec`) says what ``x`` is:

  ====================  ==============================================
  kind                  tensor fed to ``forward``
  ====================  ==============================================
  ``frame``             ``(B, 3, H, W)`` one face crop
  ``frames``            ``(B, T, 3, H, W)`` a sequence of face crops
  ``clip``              ``(B, 3, T, H, W)`` a clip for 3D convolutions
  ``landmarks``         ``(B, T, P, 2)`` normalised landmark tracks
  ====================  ==============================================
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from fak3zer0.errors import ModelError

INPUT_KINDS = ("frame", "frames", "clip", "landmarks")


@dataclass(frozen=True)
class InputSpec:
    """What a model consumes; the data pipeline reads this instead of hard-coding sizes."""

    kind: str = "frame"
    size: int = 224
    frames: int = 1
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    landmarks: int = 0

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ModelError(f"input kind must be one of {INPUT_KINDS}, not {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        d = dict(d)
        d["mean"], d["std"] = tuple(d.get("mean", (0, 0, 0))), tuple(d.get("std", (1, 1, 1)))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def is_temporal(self) -> bool:
        return self.kind != "frame"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., Any]
    input_spec: InputSpec
    family: str
    description: str = ""
    #: tag -> function(model) that loads those weights into a freshly built model.
    pretrained: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    pretrained_available: Callable[[str], bool] | None = None

    def weights_available(self) -> list[str]:
        if not self.pretrained:
            return []
        check = self.pretrained_available or (lambda tag: True)
        return [tag for tag in self.pretrained if check(tag)]


class ModelRegistry:
    """String-keyed registry of model builders (like timm's, but small)."""

    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}

    def register(
        self,
        name: str,
        *,
        input_spec: InputSpec,
        family: str,
        description: str = "",
        pretrained: dict[str, Callable[[Any], None]] | None = None,
        pretrained_available: Callable[[str], bool] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ModelError(f"model {name!r} is registered twice")
            self._entries[name] = ModelEntry(
                name, fn, input_spec, family, description or (fn.__doc__ or "").strip().split("\n")[0],
                dict(pretrained or {}), pretrained_available,
            )
            return fn

        return deco

    def entry(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise ModelError(f"unknown model {name!r}; registered models: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching ``pattern``; names starting with ``_`` (private/test models) are
        listed only when the pattern itself starts with ``_``."""
        hide = not pattern.startswith("_")
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern) and not (hide and n.startswith("_")))

    def create(self, name: str, *, pretrained: str | None = None, **cfg: Any):
        entry = self.entry(name)
        spec_overrides = {k: cfg[k] for k in ("size", "frames", "landmarks") if k in cfg}
        accepted = inspect.signature(entry.builder).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        unknown = [k for k in cfg if k not in accepted and not takes_any and k not in spec_overrides]
        if unknown:
            raise ModelError(f"model {name!r} does not take option(s) {unknown}; it takes {sorted(accepted)}")
        kwargs = {k: v for k, v in cfg.items() if k in accepted or takes_any}
        model = entry.builder(**kwargs)
        spec = getattr(model, "input_spec", None) or replace(entry.input_spec, **spec_overrides)
        model.input_spec = spec
        model.registry_name = name
        model.model_config = dict(cfg)
        if pretrained:
            if pretrained not in entry.pretrained:
                tags = ", ".join(entry.pretrained) or "none"
                raise ModelError(f"model {name!r} has no pretrained weights {pretrained!r} (available: {tags})")
            entry.pretrained[pretrained](model)
        return model


#: The process-wide registry, filled when ``fak3zer0.models`` is imported.
REGISTRY = ModelRegistry()
register_model = REGISTRY.register


def create_model(name: str, *, pretrained: str | None = None, **cfg: Any):
    """Build a registered model; ``pretrained`` picks a weight tag (see ``fak3zer0 models``)."""
    return REGISTRY.create(name, pretrained=pretrained, **cfg)


def list_models(pattern: str = "*") -> list[str]:
    return REGISTRY.names(pattern)


def model_entry(name: str) -> ModelEntry:
    return REGISTRY.entry(name)

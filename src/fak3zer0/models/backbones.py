"""2D frame backbones shared by the sequence models (temporal.py) and I3D inflation (i3d.py).

* ``small`` -- :class:`SmallCNN`, four stride-2 conv/BN/ReLU stages (~0.1M parameters),
  the CPU-sized default; also registered on its own as the frame model ``small_cnn``.
* ``efficientnet_lite0`` / ``_lite1`` / ``_lite2`` -- :class:`EfficientNetLite`, optionally
  with ImageNet weights.

Every backbone offers ``features(x)`` (a conv map), ``pooled_features(x)`` ``(B, D)``,
``num_features`` (D) and ``cam_layer()``.  Their ``forward`` methods only use shape-agnostic
pooling so that :func:`fak3zer0.models.i3d.inflate_2d_to_3d` can turn them into 3D networks.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.efficientnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_SCALING,
    EfficientNetLite,
    PooledClassifier,
    load_imagenet_weights,
)
from fak3zer0.models.registry import InputSpec, register_model

SMALL_SPEC = InputSpec(kind="frame", size=112, mean=IMAGENET_MEAN, std=IMAGENET_STD)


class SmallCNN(PooledClassifier):
    """A few stride-2 3x3 conv -> BN -> ReLU stages, global average pool, linear head."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), num_classes: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        stages, cin = [], 3
        for w in widths:
            stages.append(nn.Sequential(nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.num_features = cin
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes) if num_classes else None  # 0: feature extractor

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def cam_layer(self) -> nn.Module:
        return self.stages[-1][1]  # BN of the last stage


@register_model(
    "small_cnn",
    input_spec=SMALL_SPEC,
    family="small_cnn",
    description="Small 4-stage CNN baseline (~0.1M parameters), frame backbone for CPU-sized models",
)
def small_cnn(widths: tuple[int, ...] = (16, 32, 64, 128), dropout: float = 0.0, size: int = 112) -> SmallCNN:
    model = SmallCNN(tuple(widths), dropout=dropout)
    model.input_spec = replace(SMALL_SPEC, size=size)
    return model


BACKBONES = ("small",) + tuple(f"efficientnet_{v}" for v in LITE_SCALING)


def backbone_size(name: str) -> int:
    """Input resolution each backbone was designed for."""
    return SMALL_SPEC.size if name == "small" else LITE_SCALING[name.removeprefix("efficientnet_")][2]


def build_frame_backbone(name: str = "small", pretrained: str | None = None, num_classes: int = 1) -> nn.Module:
    """A 2D frame network by name; ``pretrained="imagenet"`` only for the EfficientNet-Lite ones.

    ``num_classes=1``: with the 1-logit head (for inflation); ``0``: feature extractor only.
    """
    if name == "small":
        if pretrained:
            raise ModelError("the small backbone has no pretrained weights")
        return SmallCNN(num_classes=num_classes)
    if name.startswith("efficientnet_") and name.removeprefix("efficientnet_") in LITE_SCALING:
        model = EfficientNetLite(name.removeprefix("efficientnet_"), num_classes=num_classes)
        if pretrained == "imagenet":
            load_imagenet_weights(model)
        elif pretrained:
            raise ModelError(f"unknown weights {pretrained!r} for {name} (available: imagenet)")
        return model
    raise ModelError(f"unknown frame backbone {name!r}; choose one of {BACKBONES}")

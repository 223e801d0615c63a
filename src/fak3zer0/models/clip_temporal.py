"""3D CNN on short sub-clips, then temporal reasoning across the sub-clips.

A clip ``(B, 3, T, H, W)`` is cut into sub-clips of ``subclip`` frames (every ``subclip_stride``
frames; non-overlapping by default).  A 3D CNN (C3D or R(2+1)D) embeds each sub-clip --
short-range motion -- and a :class:`~fak3zer0.models.temporal.SequenceHead` (GRU, LSTM or
Transformer) reasons over the sequence of sub-clip embeddings -- long-range consistency.
This is the "C3D features + RNN" pattern used for video classification (e.g. Ng et al. 2015,
Donahue et al. 2015, with 3D instead of 2D features).

Registered presets: ``c3d_gru`` and ``r2plus1d_transformer``; any encoder/sequence pair is
available through the options (``encoder=``, ``sequence=``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.c3d import KINETICS_MEAN, KINETICS_STD, C3D
from fak3zer0.models.r2plus1d import R2Plus1D
from fak3zer0.models.registry import InputSpec, register_model
from fak3zer0.models.temporal import SequenceHead

CLIP16_SPEC = InputSpec(kind="clip", size=112, frames=16, mean=KINETICS_MEAN, std=KINETICS_STD)
ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "c3d": dict(width=0.125, fc_dim=256, dropout=0.0),
    "r2plus1d": dict(widths=(16, 32, 64, 128), depth=10),
}


def build_clip_encoder(name: str, options: dict[str, Any] | None = None) -> nn.Module:
    opts = {**ENCODER_DEFAULTS.get(name, {}), **(options or {}), "with_head": False}
    if name == "c3d":
        return C3D(**opts)
    if name == "r2plus1d":
        return R2Plus1D(**opts)
    raise ModelError(f"clip encoder must be one of {sorted(ENCODER_DEFAULTS)}, not {name!r}")


def split_subclips(clip: torch.Tensor, length: int, stride: int) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, S, C, length, H, W)`` with ``S = (T - length) // stride + 1``."""
    if clip.shape[2] < length:
        raise ModelError(f"clip has {clip.shape[2]} frames, fewer than one sub-clip ({length})")
    windows = clip.unfold(2, length, stride)  # (B, C, S, H, W, length)
    return windows.permute(0, 2, 1, 5, 3, 4)


class ClipSequenceClassifier(nn.Module):
    def __init__(
        self,
        encoder: str = "c3d",
        sequence: str = "gru",
        subclip: int = 4,
        subclip_stride: int | None = None,
        encoder_options: dict[str, Any] | None = None,
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = False,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.subclip, self.subclip_stride = subclip, subclip_stride or subclip
        self.encoder = build_clip_encoder(encoder, encoder_options)
        self.head = SequenceHead(self.encoder.num_features, sequence, hidden=hidden, layers=layers,
                                 bidirectional=bidirectional, heads=heads, dropout=dropout)

    def subclip_features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, S, D)`` one embedding per sub-clip."""
        sub = split_subclips(clip, self.subclip, self.subclip_stride)
        b, s = sub.shape[:2]
        return self.encoder.embed(sub.flatten(0, 1)).view(b, s, -1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clip, or ``(B, S, D)`` precomputed sub-clip features -> ``(B,)``."""
        feats = clip if clip.dim() == 3 else self.subclip_features(clip)
        return self.head(feats)

    def cam_layer(self) -> nn.Module:
        return self.encoder.cam_layer()


def _register(name: str, encoder: str, sequence: str, description: str) -> None:
    @register_model(name, input_spec=CLIP16_SPEC, family="clip_sequence", description=description)
    def build(
        subclip: int = 4,
        subclip_stride: int | None = None,
        encoder_options: dict[str, Any] | None = None,
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = False,
        heads: int = 4,
        dropout: float = 0.1,
        encoder: str = encoder,
        sequence: str = sequence,
        size: int = CLIP16_SPEC.size,
        frames: int = CLIP16_SPEC.frames,
    ) -> ClipSequenceClassifier:
        model = ClipSequenceClassifier(encoder, sequence, subclip, subclip_stride, encoder_options,
                                       hidden, layers, bidirectional, heads, dropout)
        model.input_spec = InputSpec(kind="clip", size=size, frames=frames, mean=KINETICS_MEAN, std=KINETICS_STD)
        return model


_register("c3d_gru", "c3d", "gru", "C3D on 4-frame sub-clips + GRU across sub-clips")
_register("r2plus1d_transformer", "r2plus1d", "transformer", "R(2+1)D on 4-frame sub-clips + Transformer across sub-clips")

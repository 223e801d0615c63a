"""CNN + sequence models: per-frame CNN features, then an RNN or a Transformer over time.

One implementation, :class:`FrameSequenceClassifier`, with registered presets:

=====================  ===============================================================
``cnn_lstm``           frame features -> LSTM -> last hidden state -> logit
``cnn_gru``            same with a GRU
``cnn_bilstm``         bidirectional LSTM (forward and backward final states concatenated)
``cnn_bigru``          bidirectional GRU
``cnn_transformer``    frame features + sinusoidal positions + class token ->
                       TransformerEncoder -> class token -> logit
=====================  ===============================================================

The CNN+LSTM recipe is the one of Güera & Delp (AVSS 2018) for deepfake videos; the
Transformer variant follows the "frame embeddings + [CLS] token" pattern of ViT/BERT.

Input kind ``frames``: ``(B, T, 3, H, W)``.  ``forward`` also accepts precomputed frame
features ``(B, T, D)`` (from :meth:`FrameSequenceClassifier.frame_features`), so the
sequence part can be trained quickly on cached features of a frozen backbone.
The backbone is ``"small"`` (CPU-sized default) or ``"efficientnet_lite0"`` (optionally
``backbone_pretrained="imagenet"``, optionally ``freeze_backbone=True``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.backbones import backbone_size, build_frame_backbone
from fak3zer0.models.efficientnet import IMAGENET_MEAN, IMAGENET_STD
from fak3zer0.models.registry import InputSpec, register_model

FRAMES_SPEC = InputSpec(kind="frames", size=112, frames=8, mean=IMAGENET_MEAN, std=IMAGENET_STD)
SEQUENCE_KINDS = ("lstm", "gru", "transformer")


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """``(length, dim)`` fixed sine/cosine position codes (Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class SequenceHead(nn.Module):
    """``(B, T, D)`` sequence of per-step features -> ``(B,)`` logits.

    ``kind="lstm"``/``"gru"`` (optionally bidirectional) summarise the sequence with the final
    hidden state(s) (``pool="last"``) or the mean over time (``pool="mean"``);
    ``kind="transformer"`` prepends a learned class token, adds sinusoidal positions and
    reads the class token after a pre-norm TransformerEncoder.
    """

    def __init__(
        self,
        in_dim: int,
        kind: str = "lstm",
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = False,
        heads: int = 4,
        dropout: float = 0.1,
        pool: str = "last",
        max_len: int = 512,
    ) -> None:
        super().__init__()
        if kind not in SEQUENCE_KINDS:
            raise ModelError(f"sequence kind must be one of {SEQUENCE_KINDS}, not {kind!r}")
        if pool not in ("last", "mean"):
            raise ModelError(f"pool must be 'last' or 'mean', not {pool!r}")
        self.kind, self.pool = kind, pool
        if kind == "transformer":
            self.proj = nn.Linear(in_dim, hidden)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
            nn.init.normal_(self.cls_token, std=0.02)
            self.register_buffer("positions", sinusoidal_positions(max_len + 1, hidden), persistent=False)
            layer = nn.TransformerEncoderLayer(
                hidden, heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(hidden)
            out_dim = hidden
        else:
            rnn = nn.LSTM if kind == "lstm" else nn.GRU
            self.rnn = rnn(in_dim, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                           dropout=dropout if layers > 1 else 0.0)
            out_dim = hidden * (2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(out_dim, 1)

    def summarise(self, seq: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` -> ``(B, out_dim)`` clip embedding."""
        if self.kind == "transformer":
            x = self.proj(seq)
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + self.positions[: x.shape[1]]
            return self.norm(self.encoder(x)[:, 0])
        out, state = self.rnn(seq)
        if self.pool == "mean":
            return out.mean(1)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        if self.rnn.bidirectional:
            return torch.cat([h[-2], h[-1]], dim=1)  # last layer, forward and backward
        return h[-1]

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.summarise(seq))).squeeze(1)


class FrameSequenceClassifier(nn.Module):
    """Frame CNN applied to every frame, then a :class:`SequenceHead` over time."""

    def __init__(
        self,
        sequence: str = "lstm",
        backbone: str = "small",
        backbone_pretrained: str | None = None,
        freeze_backbone: bool = False,
        bidirectional: bool = False,
        hidden: int = 128,
        layers: int = 1,
        heads: int = 4,
        dropout: float = 0.1,
        pool: str = "last",
    ) -> None:
        super().__init__()
        self.backbone = build_frame_backbone(backbone, backbone_pretrained, num_classes=0)
        self.feature_dim = self.backbone.num_features
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.head = SequenceHead(self.feature_dim, sequence, hidden=hidden, layers=layers,
                                 bidirectional=bidirectional, heads=heads, dropout=dropout, pool=pool)

    def train(self, mode: bool = True) -> "FrameSequenceClassifier":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # a frozen backbone also keeps its batch-norm statistics
        return self

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` -> ``(B, T, D)``; cache these to train the head alone."""
        b, t = frames.shape[:2]
        feats = self.backbone.pooled_features(frames.flatten(0, 1))
        return feats.view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` frames, or ``(B, T, D)`` precomputed frame features -> ``(B,)``."""
        feats = x if x.dim() == 3 else self.frame_features(x)
        return self.head(feats)

    def cam_layer(self) -> nn.Module:
        return self.backbone.cam_layer()


# ---------------------------------------------------------------- registry

_PRESETS = {
    "cnn_lstm": ("lstm", False, "CNN per frame + LSTM (Güera & Delp 2018)"),
    "cnn_gru": ("gru", False, "CNN per frame + GRU"),
    "cnn_bilstm": ("lstm", True, "CNN per frame + bidirectional LSTM"),
    "cnn_bigru": ("gru", True, "CNN per frame + bidirectional GRU"),
    "cnn_transformer": ("transformer", False, "CNN per frame + Transformer encoder with a class token"),
}


def _register(name: str, sequence: str, bidirectional: bool, description: str) -> None:
    @register_model(name, input_spec=FRAMES_SPEC, family="cnn_sequence", description=description)
    def build(
        backbone: str = "small",
        backbone_pretrained: str | None = None,
        freeze_backbone: bool = False,
        hidden: int = 128,
        layers: int = 1 if sequence != "transformer" else 2,
        heads: int = 4,
        dropout: float = 0.1,
        pool: str = "last",
        size: int | None = None,
        frames: int = FRAMES_SPEC.frames,
    ) -> FrameSequenceClassifier:
        model = FrameSequenceClassifier(sequence, backbone, backbone_pretrained, freeze_backbone, bidirectional,
                                        hidden, layers, heads, dropout, pool)
        model.input_spec = InputSpec(kind="frames", size=size or backbone_size(backbone), frames=frames,
                                     mean=IMAGENET_MEAN, std=IMAGENET_STD)
        return model


for _name, (_seq, _bi, _desc) in _PRESETS.items():
    _register(_name, _seq, _bi, _desc)

"""C3D (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015).

The paper's network: 3x3x3 convolutions, stride 1, in five stages of
(1, 1, 2, 2, 2) convolutions = 8 conv layers with (64, 128, 256, 512, 512) channels;
pool1 is 1x2x2 (keep early temporal information), pool2-5 are 2x2x2; then fc6 and fc7
(4096 units, dropout 0.5) and the classifier.  Input 16 x 112 x 112 clips.

Options here: ``width`` multiplies every channel count (default 1/8 for CPU), ``fc_dim``
is the size of fc6/fc7 (default 256; paper: 4096), ``convs_per_stage`` sets the depth, ``batch_norm``
adds BN after every conv (the 2015 paper predates BN; ``batch_norm=False`` is the original).
After pool5 the map is average-pooled to 1 x 4 x 4 -- the paper's pool5 output for a
16 x 112 x 112 clip -- so fc6 sees the paper's 8192 inputs at ``width=1`` whatever the clip size.
``width=1, fc_dim=4096, batch_norm=False`` is the paper's C3D.
"""
from __future__ import annotations

import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.registry import InputSpec, register_model

# C3D was trained on [0, 255] clips minus a mean clip; we take [0, 1] inputs with the per-channel
# Kinetics-400 mean/std that common video-model implementations use.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
CLIP_SPEC = InputSpec(kind="clip", size=112, frames=16, mean=KINETICS_MEAN, std=KINETICS_STD)

PAPER_WIDTHS = (64, 128, 256, 512, 512)
PAPER_CONVS = (1, 1, 2, 2, 2)


class C3D(nn.Module):
    def __init__(
        self,
        width: float = 0.125,
        fc_dim: int = 256,
        convs_per_stage: tuple[int, ...] = PAPER_CONVS,
        batch_norm: bool = True,
        dropout: float = 0.5,
        with_head: bool = True,
    ) -> None:
        super().__init__()
        if len(convs_per_stage) != len(PAPER_WIDTHS) or min(convs_per_stage) < 1:
            raise ModelError(f"convs_per_stage needs 5 positive counts, got {convs_per_stage}")
        widths = [max(8, int(round(c * width))) for c in PAPER_WIDTHS]
        layers: list[nn.Module] = []
        cin = 3
        for stage, (cout, n) in enumerate(zip(widths, convs_per_stage)):
            for _ in range(n):
                layers.append(nn.Conv3d(cin, cout, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm3d(cout))
                layers.append(nn.ReLU())
                cin = cout
            pool = (1, 2, 2) if stage == 0 else (2, 2, 2)
            layers.append(nn.MaxPool3d(pool, stride=pool, ceil_mode=True))
        self.conv = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d((1, 4, 4))
        self.fc6 = nn.Linear(cin * 16, fc_dim)
        self.fc7 = nn.Linear(fc_dim, fc_dim)
        self.drop = nn.Dropout(dropout)
        self.fc8 = nn.Linear(fc_dim, 1) if with_head else None  # no head when used as an encoder
        self.num_features = fc_dim
        # Grad-CAM target: the last conv (or its batch norm); an index, so it is not registered twice.
        self._cam_index = max(i for i, m in enumerate(layers) if isinstance(m, (nn.BatchNorm3d, nn.Conv3d)))

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> pool5 map ``(B, C, T/16, H/32, W/32)`` (rounded up)."""
        return self.conv(clip)

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> fc7 activations ``(B, fc_dim)`` (the "C3D feature" of the paper)."""
        x = torch.flatten(self.pool(self.features(clip)), 1)
        x = self.drop(torch.relu(self.fc6(x)))
        return self.drop(torch.relu(self.fc7(x)))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if self.fc8 is None:
            raise ModelError("built without a head (with_head=False); use embed()")
        return self.fc8(self.embed(clip)).squeeze(1)

    def cam_layer(self) -> nn.Module:
        return self.conv[self._cam_index]


@register_model("c3d", input_spec=CLIP_SPEC, family="c3d", description="C3D 3D CNN (Tran et al. 2015), width 1/8 and fc 256 by default")
def c3d(
    width: float = 0.125,
    fc_dim: int = 256,
    convs_per_stage: tuple[int, ...] = PAPER_CONVS,
    batch_norm: bool = True,
    dropout: float = 0.5,
    size: int = CLIP_SPEC.size,
    frames: int = CLIP_SPEC.frames,
) -> C3D:
    model = C3D(width, fc_dim, tuple(convs_per_stage), batch_norm, dropout)
    model.input_spec = InputSpec(kind="clip", size=size, frames=frames, mean=KINETICS_MEAN, std=KINETICS_STD)
    return model

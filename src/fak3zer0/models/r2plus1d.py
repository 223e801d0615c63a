"""R(2+1)D (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018).

Every ``t x d x d`` 3D convolution of a 3D ResNet is factorised into a ``1 x d x d`` spatial
convolution to ``M`` channels, batch norm + ReLU, then a ``t x 1 x 1`` temporal convolution.
``M`` is chosen so that the (2+1)D block has about as many parameters as the 3D one
(paper, section 3.5):

    M_i = floor( t * d^2 * N_{i-1} * N_i / (d^2 * N_{i-1} + t * N_i) )

The network is the paper's ResNet layout: a (2+1)D stem (spatial kernel 7, spatial stride 2),
four stages of basic residual blocks, stages 2-4 downsampling by 2 in time *and* space,
global average pooling, one logit.  ``depth`` 18 / 34 give the paper's block counts
(2,2,2,2) / (3,4,6,3); ``depth=10`` (one block per stage) and ``widths=(16, 32, 64, 128)``
are the CPU-sized default; ``widths=(64, 128, 256, 512), depth=18`` is R(2+1)D-18.
We also use the rule for the stem (the paper's table does not list the stem's M).
"""
from __future__ import annotations

import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.c3d import KINETICS_MEAN, KINETICS_STD
from fak3zer0.models.registry import InputSpec, register_model

R2PLUS1D_SPEC = InputSpec(kind="clip", size=112, frames=8, mean=KINETICS_MEAN, std=KINETICS_STD)
DEPTHS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def mid_channels(cin: int, cout: int, t: int = 3, d: int = 3) -> int:
    """The paper's M_i: the (2+1)D block then has ~ the parameter count of a t x d x d conv."""
    return (t * d * d * cin * cout) // (d * d * cin + t * cout)


class Conv2Plus1D(nn.Sequential):
    """``1 x d x d`` spatial conv -> BN -> ReLU -> ``t x 1 x 1`` temporal conv (no BN/ReLU after)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, t: int = 3, d: int = 3, time_stride: int | None = None) -> None:
        mid = mid_channels(cin, cout, t, d)
        ts = stride if time_stride is None else time_stride
        super().__init__(
            nn.Conv3d(cin, mid, (1, d, d), stride=(1, stride, stride), padding=(0, d // 2, d // 2), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(),
            nn.Conv3d(mid, cout, (t, 1, 1), stride=(ts, 1, 1), padding=(t // 2, 0, 0), bias=False),
        )
        self.mid_channels = mid


class BasicBlock2Plus1D(nn.Module):
    """ResNet basic block with (2+1)D convolutions; stride 2 halves T, H and W."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = Conv2Plus1D(cin, cout, stride), nn.BatchNorm3d(cout)
        self.conv2, self.bn2 = Conv2Plus1D(cout, cout), nn.BatchNorm3d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class R2Plus1D(nn.Module):
    def __init__(
        self, widths: tuple[int, ...] = (16, 32, 64, 128), depth: int = 10, dropout: float = 0.0, with_head: bool = True
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ModelError(f"R(2+1)D depth must be one of {sorted(DEPTHS)}, not {depth}")
        if len(widths) != 4:
            raise ModelError(f"R(2+1)D needs 4 stage widths, got {widths}")
        self.stem = nn.Sequential(
            Conv2Plus1D(3, widths[0], stride=2, t=3, d=7, time_stride=1), nn.BatchNorm3d(widths[0]), nn.ReLU()
        )
        stages, cin = [], widths[0]
        for i, (cout, n) in enumerate(zip(widths, DEPTHS[depth])):
            blocks = [BasicBlock2Plus1D(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.num_features = cin
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, 1) if with_head else None  # no head when used as an encoder

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, C, T/8, H/16, W/16)`` (rounded up)."""
        return self.stages(self.stem(clip))

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        return self.features(clip).flatten(2).mean(-1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if self.fc is None:
            raise ModelError("built without a head (with_head=False); use embed()")
        return self.fc(self.dropout(self.embed(clip))).squeeze(1)

    def cam_layer(self) -> nn.Module:
        return self.stages[-1][-1].bn2


@register_model(
    "r2plus1d", input_spec=R2PLUS1D_SPEC, family="r2plus1d",
    description="R(2+1)D ResNet (Tran et al. 2018), depth 10 and widths 16-128 by default",
)
def r2plus1d(
    widths: tuple[int, ...] = (16, 32, 64, 128),
    depth: int = 10,
    dropout: float = 0.0,
    size: int = R2PLUS1D_SPEC.size,
    frames: int = R2PLUS1D_SPEC.frames,
) -> R2Plus1D:
    model = R2Plus1D(tuple(widths), depth, dropout)
    model.input_spec = InputSpec(kind="clip", size=size, frames=frames, mean=KINETICS_MEAN, std=KINETICS_STD)
    return model

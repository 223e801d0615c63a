"""MesoNet (Afchar et al., WIFS 2018): Meso4 and MesoInception4.

Faithful to the paper: 256x256 RGB input scaled to [0, 1], four conv blocks
(conv+ReLU, batch norm, max pool), dropout 0.5, Dense(16) + LeakyReLU(0.1), one output.
The published Keras weights (``Meso4_DF.h5`` etc.) predict P(real); on loading we negate
the last layer so that, like every model here, the output is the *fake* logit.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fak3zer0.models.keras_h5 import layers_of_type, load_batchnorm, load_conv, load_dense, read_keras_layers
from fak3zer0.models.registry import InputSpec, register_model
from fak3zer0.paths import weights_dir

MESO_SPEC = InputSpec(kind="frame", size=256)
_KERAS_BN = dict(eps=1e-3, momentum=0.01)  # Keras defaults (momentum 0.99 in Keras terms)


def _conv_block(cin: int, cout: int, k: int, pool: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout, **_KERAS_BN),
        nn.MaxPool2d(pool, ceil_mode=True),
    )


class MesoHead(nn.Module):
    """Flatten -> Dropout -> Dense(16) -> LeakyReLU(0.1) -> Dropout -> Dense(1)."""

    def __init__(self, in_features: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.drop1 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(in_features, 16)
        self.act = nn.LeakyReLU(0.1)
        self.drop2 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(self.drop1(torch.flatten(x, 1))))
        return self.fc2(self.drop2(x)).squeeze(1)


class Meso4(nn.Module):
    def __init__(self, size: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.block1 = _conv_block(3, 8, 3, 2)
        self.block2 = _conv_block(8, 8, 5, 2)
        self.block3 = _conv_block(8, 16, 5, 2)
        self.block4 = _conv_block(16, 16, 5, 4)
        self.head = MesoHead(16 * (size // 32) ** 2, dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block4(self.block3(self.block2(self.block1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def cam_layer(self) -> nn.Module:
        return self.block4[2]  # batch norm after the last conv, before pooling


class InceptionLayer(nn.Module):
    """MesoInception module: 1x1 | 1x1->3x3 | 1x1->3x3 dil 2 | 1x1->3x3 dil 3, concatenated."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(cin, a, 1)
        self.b2_1, self.b2_2 = nn.Conv2d(cin, b, 1), nn.Conv2d(b, b, 3, padding=1)
        self.b3_1, self.b3_2 = nn.Conv2d(cin, c, 1), nn.Conv2d(c, c, 3, padding=2, dilation=2)
        self.b4_1, self.b4_2 = nn.Conv2d(cin, d, 1), nn.Conv2d(d, d, 3, padding=3, dilation=3)
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu
        return torch.cat(
            [
                r(self.b1(x)),
                r(self.b2_2(r(self.b2_1(x)))),
                r(self.b3_2(r(self.b3_1(x)))),
                r(self.b4_2(r(self.b4_1(x)))),
            ],
            dim=1,
        )

    def convs_in_keras_order(self) -> list[nn.Conv2d]:
        return [self.b1, self.b2_1, self.b2_2, self.b3_1, self.b3_2, self.b4_1, self.b4_2]


class MesoInception4(nn.Module):
    def __init__(self, size: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.inc1 = InceptionLayer(3, 1, 4, 4, 2)
        self.bn1, self.pool1 = nn.BatchNorm2d(11, **_KERAS_BN), nn.MaxPool2d(2, ceil_mode=True)
        self.inc2 = InceptionLayer(11, 2, 4, 4, 2)
        self.bn2, self.pool2 = nn.BatchNorm2d(12, **_KERAS_BN), nn.MaxPool2d(2, ceil_mode=True)
        self.block3 = _conv_block(12, 16, 5, 2)
        self.block4 = _conv_block(16, 16, 5, 4)
        self.head = MesoHead(16 * (size // 32) ** 2, dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.bn1(self.inc1(x)))
        x = self.pool2(self.bn2(self.inc2(x)))
        return self.block4(self.block3(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def cam_layer(self) -> nn.Module:
        return self.block4[2]


# ---------------------------------------------------------------- Keras weights

def _keras_file(name: str) -> Path:
    root = weights_dir()
    return (root / "mesonet" / name) if root else Path("mesonet") / name


def _load_head(model: nn.Module, dense: list[dict]) -> None:
    n = model.head.fc1.in_features
    side = int(round((n // 16) ** 0.5))
    load_dense(model.head.fc1, dense[0], chw_from_hwc=(16, side, side))
    load_dense(model.head.fc2, dense[1])
    # Keras output is P(real); flip the sign so the logit is for "fake".
    model.head.fc2.weight.data.neg_()
    model.head.fc2.bias.data.neg_()


def load_meso4_keras(model: Meso4, path: str | Path) -> None:
    layers = read_keras_layers(path)
    convs, bns = layers_of_type(layers, "conv2d"), layers_of_type(layers, "batch_normalization")
    for block, cw, bw in zip((model.block1, model.block2, model.block3, model.block4), convs, bns):
        load_conv(block[0], cw)
        load_batchnorm(block[2], bw)
    _load_head(model, layers_of_type(layers, "dense"))


def load_meso_inception4_keras(model: MesoInception4, path: str | Path) -> None:
    layers = read_keras_layers(path)
    convs, bns = layers_of_type(layers, "conv2d"), layers_of_type(layers, "batch_normalization")
    targets = model.inc1.convs_in_keras_order() + model.inc2.convs_in_keras_order()
    targets += [model.block3[0], model.block4[0]]
    for conv, w in zip(targets, convs, strict=True):
        load_conv(conv, w)
    for bn, w in zip((model.bn1, model.bn2, model.block3[2], model.block4[2]), bns, strict=True):
        load_batchnorm(bn, w)
    _load_head(model, layers_of_type(layers, "dense"))


_MESO4_FILES = {"df": "Meso4_DF.h5", "f2f": "Meso4_F2F.h5"}
_INC_FILES = {"df": "MesoInception_DF.h5", "f2f": "MesoInception_F2F.h5"}


@register_model(
    "meso4",
    input_spec=MESO_SPEC,
    family="mesonet",
    description="Meso-4 (Afchar et al. 2018), ~28k parameters",
    pretrained={t: (lambda m, f=f: load_meso4_keras(m, _keras_file(f))) for t, f in _MESO4_FILES.items()},
    pretrained_available=lambda tag: _keras_file(_MESO4_FILES[tag]).is_file(),
)
def meso4(size: int = 256, dropout: float = 0.5) -> Meso4:
    return Meso4(size=size, dropout=dropout)


@register_model(
    "meso_inception4",
    input_spec=MESO_SPEC,
    family="mesonet",
    description="MesoInception-4 (Afchar et al. 2018)",
    pretrained={t: (lambda m, f=f: load_meso_inception4_keras(m, _keras_file(f))) for t, f in _INC_FILES.items()},
    pretrained_available=lambda tag: _keras_file(_INC_FILES[tag]).is_file(),
)
def meso_inception4(size: int = 256, dropout: float = 0.5) -> MesoInception4:
    return MesoInception4(size=size, dropout=dropout)

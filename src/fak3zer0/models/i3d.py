"""I3D (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017): inflated 2D networks.

A 2D image network becomes a 3D video network by *inflating* every ``k x k`` kernel to
``t x k x k``: the 2D weights are repeated ``t`` times along time and divided by ``t``.
On a "boring" video (the same frame repeated) the inflated network then computes exactly
what the 2D network computes on that frame, so ImageNet weights are a valid starting point
for video.  Pooling layers get a temporal extent of 1; batch norm statistics are copied.

:func:`inflate_2d_to_3d` inflates any network made of Conv2d/BatchNorm2d/pooling layers whose
``forward`` pools in a shape-agnostic way (all our frame backbones, see backbones.py).
Temporal padding is ``"replicate"`` by default: then the equivalence on boring videos also
holds at the first and last frames (with zero padding the border frames see fewer inputs).

Registered: ``i3d`` (inflated small CNN, CPU-sized) and ``i3d_lite0`` (inflated
EfficientNet-Lite0; pretrained tag ``imagenet`` = inflated ImageNet weights).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.backbones import backbone_size, build_frame_backbone
from fak3zer0.models.efficientnet import IMAGENET_MEAN, IMAGENET_STD, SameConv2d, imagenet_weights_available, tf_same_padding
from fak3zer0.models.registry import InputSpec, register_model

I3D_SPEC = InputSpec(kind="clip", size=112, frames=8, mean=IMAGENET_MEAN, std=IMAGENET_STD)


class InflatedConv3d(nn.Conv3d):
    """A 3D convolution made from a 2D one (``init="mean"``: repeat and divide by t;
    ``init="center"``: the 2D kernel on the centre time step, zeros elsewhere)."""

    def __init__(
        self,
        conv: nn.Conv2d,
        time_kernel: int = 3,
        time_stride: int = 1,
        temporal_padding: str = "replicate",
        init: str = "mean",
    ) -> None:
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ModelError("only zero-padded Conv2d layers with numeric padding can be inflated")
        super().__init__(
            conv.in_channels, conv.out_channels, (time_kernel, *conv.kernel_size),
            stride=(time_stride, *conv.stride), padding=(0, *conv.padding), dilation=(1, *conv.dilation),
            groups=conv.groups, bias=conv.bias is not None,
        )
        if temporal_padding not in ("replicate", "zeros"):
            raise ModelError(f"temporal_padding must be 'replicate' or 'zeros', not {temporal_padding!r}")
        if init not in ("mean", "center"):
            raise ModelError(f"init must be 'mean' or 'center', not {init!r}")
        self.time_pad = (time_kernel - 1) // 2, time_kernel - 1 - (time_kernel - 1) // 2
        self.temporal_padding = temporal_padding
        self.tf_same = isinstance(conv, SameConv2d) and conv.dynamic_padding
        with torch.no_grad():
            w2d = conv.weight.detach()
            if init == "mean":
                self.weight.copy_(w2d.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel)
            else:
                self.weight.zero_()
                self.weight[:, :, time_kernel // 2].copy_(w2d)
            if conv.bias is not None:
                self.bias.copy_(conv.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            x = F.pad(x, tf_same_padding(x, self.kernel_size, self.stride))
        if self.time_pad != (0, 0):
            mode = "replicate" if self.temporal_padding == "replicate" else "constant"
            x = F.pad(x, [0, 0, 0, 0, *self.time_pad], mode=mode)
        return super().forward(x)


def _inflate_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm3d:
    bn3 = nn.BatchNorm3d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats)
    bn3.load_state_dict(bn.state_dict())
    return bn3


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _inflate_module(m: nn.Module, time_kernel: int, time_stride: int, temporal_padding: str, init: str) -> nn.Module:
    if isinstance(m, nn.Conv2d):
        kt = time_kernel if max(m.kernel_size) > 1 else 1  # 1x1 convs stay 1x1x1, as in the paper
        return InflatedConv3d(m, kt, time_stride, temporal_padding, init)
    if isinstance(m, nn.BatchNorm2d):
        return _inflate_bn(m)
    if isinstance(m, nn.MaxPool2d):
        return nn.MaxPool3d((1, *_pair(m.kernel_size)), (1, *_pair(m.stride)), (0, *_pair(m.padding)),
                            (1, *_pair(m.dilation)), ceil_mode=m.ceil_mode)
    if isinstance(m, nn.AvgPool2d):
        return nn.AvgPool3d((1, *_pair(m.kernel_size)), (1, *_pair(m.stride)), (0, *_pair(m.padding)),
                            ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d((1, *_pair(m.output_size)))
    if "2d" in type(m).__name__.lower():
        raise ModelError(f"don't know how to inflate {type(m).__name__}")
    return m


def inflate_2d_to_3d(
    model2d: nn.Module,
    time_kernel: int = 3,
    stem_time_stride: int = 1,
    temporal_padding: str = "replicate",
    init: str = "mean",
) -> nn.Module:
    """A 3D copy of ``model2d`` (which is left untouched) taking ``(B, C, T, H, W)`` clips.

    ``k x k`` convs become ``time_kernel x k x k``; the first conv may stride in time
    (``stem_time_stride``, I3D uses 2); pools become ``1 x k x k``.
    """
    model = copy.deepcopy(model2d)
    first_conv = [True]

    def visit(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            new = child
            if isinstance(child, nn.Conv2d):
                stride = stem_time_stride if first_conv[0] else 1
                first_conv[0] = False
                new = _inflate_module(child, time_kernel, stride, temporal_padding, init)
            elif list(child.children()):
                visit(child)
            else:
                new = _inflate_module(child, time_kernel, 1, temporal_padding, init)
            if new is not child:
                setattr(parent, name, new)

    visit(model)
    return model


class I3D(nn.Module):
    """An inflated frame backbone; ``forward`` is the 2D network's (global pooling over T, H, W)."""

    def __init__(
        self,
        backbone: str = "small",
        backbone_pretrained: str | None = None,
        time_kernel: int = 3,
        stem_time_stride: int = 1,
        temporal_padding: str = "replicate",
        init: str = "mean",
    ) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.inflate_options = dict(time_kernel=time_kernel, stem_time_stride=stem_time_stride,
                                    temporal_padding=temporal_padding, init=init)
        self.net = inflate_2d_to_3d(build_frame_backbone(backbone, backbone_pretrained), **self.inflate_options)
        self.num_features = self.net.num_features

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net.pooled_features(clip)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip)

    def cam_layer(self) -> nn.Module:
        return self.net.cam_layer()


def load_inflated_imagenet(model: I3D) -> None:
    """Inflate the ImageNet EfficientNet-Lite weights into ``model`` (the fake head stays random)."""
    source = inflate_2d_to_3d(build_frame_backbone(model.backbone_name, "imagenet"), **model.inflate_options)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = model.net.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise ModelError(f"inflated weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")


def _build(backbone, backbone_pretrained, time_kernel, stem_time_stride, temporal_padding, init, size, frames) -> I3D:
    model = I3D(backbone, backbone_pretrained, time_kernel, stem_time_stride, temporal_padding, init)
    model.input_spec = InputSpec(kind="clip", size=size or backbone_size(backbone), frames=frames,
                                 mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return model


@register_model("i3d", input_spec=I3D_SPEC, family="i3d", description="I3D: inflated 2D CNN (Carreira & Zisserman 2017), small CNN by default")
def i3d(
    backbone: str = "small",
    backbone_pretrained: str | None = None,
    time_kernel: int = 3,
    stem_time_stride: int = 1,
    temporal_padding: str = "replicate",
    init: str = "mean",
    size: int | None = None,
    frames: int = I3D_SPEC.frames,
) -> I3D:
    return _build(backbone, backbone_pretrained, time_kernel, stem_time_stride, temporal_padding, init, size, frames)


@register_model(
    "i3d_lite0",
    input_spec=InputSpec(kind="clip", size=224, frames=8, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    family="i3d",
    description="I3D-inflated EfficientNet-Lite0; 'imagenet' = inflated ImageNet weights",
    pretrained={"imagenet": load_inflated_imagenet},
    pretrained_available=lambda tag: imagenet_weights_available("lite0"),
)
def i3d_lite0(
    time_kernel: int = 3,
    stem_time_stride: int = 2,
    temporal_padding: str = "replicate",
    init: str = "mean",
    size: int = 224,
    frames: int = 8,
) -> I3D:
    return _build("efficientnet_lite0", None, time_kernel, stem_time_stride, temporal_padding, init, size, frames)

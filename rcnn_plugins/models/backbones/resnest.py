"""ResNeSt (Zhang et al., 2020), registered as ``'ResNeSt'``: ResNetV1d whose 3x3 convs are
split-attention convs (``conv2.conv``, ``conv2.bn0``, ``conv2.fc1``, ``conv2.bn1``, ``conv2.fc2``:
MMDetection's keys), with the stride done by a 3x3 average pool after them (``avg_down_stride``).
"""
import torch.nn as nn

from rcnn_plugins.registry import MODELS
from ..layers.split_attention_conv import SplitAttentionConv2d
from .resnet_blocks import Bottleneck, ResLayer
from .resnet_v1d import ResNetV1d
from .resnext import grouped_width


class ResNeStBottleneck(Bottleneck):
    """Bottleneck with a ``SplitAttentionConv2d`` 3x3 stage (its own norm and ReLU inside, so no
    ``norm2``) and, with ``avg_down_stride`` on a strided block, ``avd_layer`` (AvgPool 3x3) after it.

    ``forward(x (B, inplanes, H, W)) -> (B, 4 * planes, H / stride, W / stride)``.
    """

    def __init__(self, inplanes: int, planes: int, groups: int = 1, base_width: int = 4, base_channels: int = 64,
                 radix: int = 2, reduction_factor: int = 4, avg_down_stride: bool = True, **kwargs):
        self.groups, self.base_width, self.base_channels = groups, base_width, base_channels
        self.radix, self.reduction_factor, self._avg_down_stride = radix, reduction_factor, avg_down_stride
        super().__init__(inplanes, planes, **kwargs)

    def _width(self) -> int:
        return grouped_width(self.planes, self.groups, self.base_width, self.base_channels)

    def _make_conv2(self, width: int, groups: int = 1) -> None:
        self.avg_down_stride = self._avg_down_stride and self.conv2_stride > 1
        self.conv2 = SplitAttentionConv2d(
            width, width, 3, stride=1 if self.avg_down_stride else self.conv2_stride, padding=self.dilation,
            dilation=self.dilation, groups=self.groups, radix=self.radix, reduction_factor=self.reduction_factor,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, dcn=self.dcn)
        if self.avg_down_stride:
            self.avd_layer = nn.AvgPool2d(3, self.conv2_stride, padding=1)

    def _conv2_forward(self, out):
        out = self.conv2(out)
        return self.avd_layer(out) if self.avg_down_stride else out


@MODELS.register_module()
class ResNeSt(ResNetV1d):
    """ResNeSt-50/101/152/200.

    Args:
        groups, base_width: as ResNeXt. radix, reduction_factor: of the split-attention convs.
        avg_down_stride: stride by average pooling after the split-attention conv.
        **kwargs: ResNet's arguments (``stem_channels=64`` in MMDetection's configs).

    ``forward(x (B, 3, H, W))`` returns ResNet's feature tuple.
    """
    arch_settings = {
        50: (ResNeStBottleneck, (3, 4, 6, 3)),
        101: (ResNeStBottleneck, (3, 4, 23, 3)),
        152: (ResNeStBottleneck, (3, 8, 36, 3)),
        200: (ResNeStBottleneck, (3, 24, 36, 3)),
    }

    def __init__(self, groups: int = 1, base_width: int = 4, radix: int = 2, reduction_factor: int = 4,
                 avg_down_stride: bool = True, **kwargs):
        self.groups, self.base_width, self.radix = groups, base_width, radix
        self.reduction_factor, self.avg_down_stride = reduction_factor, avg_down_stride
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(groups=self.groups, base_width=self.base_width, base_channels=self.base_channels,
                        radix=self.radix, reduction_factor=self.reduction_factor,
                        avg_down_stride=self.avg_down_stride, **kwargs)

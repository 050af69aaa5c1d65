"""ResNeXt (Xie et al., 2017), registered as ``'ResNeXt'``: ResNet whose 3x3 convs are grouped.

``ResNeXt(depth=101, groups=32, base_width=4)`` is "x101-32x4d". The width of a stage's 3x3 conv
is ``floor(planes * base_width / base_channels) * groups`` (``planes = base_channels * 2**i``), so
with the default ``base_channels=64`` it is ``groups * base_width * 2**i``. Keys are MMDetection's
(which equal torchvision's ``resnext50_32x4d`` keys without ``fc.*``).
"""
import math

from rcnn_plugins.registry import MODELS
from .resnet import ResNet
from .resnet_blocks import Bottleneck, ResLayer


def grouped_width(planes: int, groups: int, base_width: int, base_channels: int) -> int:
    """Channels of a grouped 3x3 stage: ``planes`` when ``groups == 1``, else
    ``floor(planes * base_width / base_channels) * groups`` (MMDetection's formula)."""
    if groups == 1:
        return planes
    return math.floor(planes * (base_width / base_channels)) * groups


class ResNeXtBottleneck(Bottleneck):
    """Bottleneck with a grouped 3x3 conv of ``width`` channels (see the module docstring).

    ``forward(x (B, inplanes, H, W)) -> (B, 4 * planes, H / stride, W / stride)``.
    """

    def __init__(self, inplanes: int, planes: int, groups: int = 1, base_width: int = 4,
                 base_channels: int = 64, **kwargs):
        self.groups, self.base_width, self.base_channels = groups, base_width, base_channels
        super().__init__(inplanes, planes, **kwargs)

    def _width(self) -> int:
        return grouped_width(self.planes, self.groups, self.base_width, self.base_channels)

    def _make_conv2(self, width: int, groups: int = 1) -> None:
        super()._make_conv2(width, groups=self.groups)


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt-50/101/152.

    Args:
        groups: groups of each 3x3 conv (cardinality).
        base_width: channels per group in the first stage.
        **kwargs: ResNet's arguments (``depth``, ``out_indices``, ``dcn``, ``plugins``, ...).

    ``forward(x (B, 3, H, W))`` returns ResNet's feature tuple (same channels: 256, 512, 1024, 2048).
    """
    arch_settings = {
        50: (ResNeXtBottleneck, (3, 4, 6, 3)),
        101: (ResNeXtBottleneck, (3, 4, 23, 3)),
        152: (ResNeXtBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, groups: int = 1, base_width: int = 4, **kwargs):
        self.groups, self.base_width = groups, base_width
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(groups=self.groups, base_width=self.base_width, base_channels=self.base_channels,
                        **kwargs)

"""``FeatureAdaption`` (guided anchoring): a 3x3 deformable convolution whose offsets come from the
predicted anchor shapes (a 1x1 conv on the (dw, dh) map), so each location's features are sampled
over the extent of the anchor it will classify. On torchvision's ``deform_conv2d`` through
:class:`DeformConv2dPack`'s functional path; MMDetection's keys ``conv_offset.weight`` (no bias)
and ``conv_adaption.weight``.
"""
from mmengine.model import BaseModule
from torch import Tensor, nn

from .deform_conv import DeformConv2dPack


class DeformConv2d(DeformConv2dPack):
    """mmcv's ``DeformConv2d``: the deformable conv with offsets given to ``forward(x, offset)``
    (no ``conv_offset`` of its own), keys ``weight`` (and ``bias`` when asked for)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        del self.conv_offset

    def init_offset(self) -> None:  # no offset branch to reset
        pass

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        """(B, C_in, H, W), offsets (B, 2*dg*k*k, H_out, W_out) -> (B, C_out, H_out, W_out)."""
        return self.deform_forward(x, offset)


class FeatureAdaption(BaseModule):
    """Args:
        in_channels, out_channels: of the deformable conv.
        kernel_size: its kernel (3).
        deform_groups: offset groups (4): the offsets are predicted per group of channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, deform_groups: int = 4,
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.1,
                               override=dict(type='Normal', name='conv_adaption', std=0.01))) -> None:
        super().__init__(init_cfg=init_cfg)
        offset_channels = kernel_size * kernel_size * 2
        self.conv_offset = nn.Conv2d(2, deform_groups * offset_channels, 1, bias=False)
        self.conv_adaption = DeformConv2d(in_channels, out_channels, kernel_size=kernel_size,
                                          padding=(kernel_size - 1) // 2, deform_groups=deform_groups)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, shape: Tensor) -> Tensor:
        """(B, C_in, H, W) features, (B, 2, H, W) predicted anchor shapes -> (B, C_out, H, W).
        The shapes are detached: the adaption does not train the shape branch."""
        return self.relu(self.conv_adaption(x, self.conv_offset(shape.detach())))

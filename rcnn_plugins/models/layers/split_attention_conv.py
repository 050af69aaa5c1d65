"""Split-attention convolution of ResNeSt (Zhang et al., 2020), MMDetection's ``SplitAttentionConv2d``
with its sub-module names (``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``; norms named by mmcv)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule


class SplitAttentionConv2d(BaseModule):
    """A conv producing ``radix`` splits of ``channels`` each, recombined with per-channel weights
    from a softmax over the splits (sigmoid when ``radix == 1``) computed from their pooled sum.

    Args:
        in_channels, channels: input / output channels.
        kernel_size, stride, padding, dilation: of the conv.
        groups: cardinality; the conv has ``groups * radix`` groups, the attention fcs ``groups``.
        radix: splits per group.
        reduction_factor: attention hidden width is ``max(in_channels * radix // reduction_factor, 32)``.
        conv_cfg, norm_cfg: for the conv and norms; dcn: conv config of the main conv (as Bottleneck).

    ``forward(x (B, in_channels, H, W)) -> (B, channels, H_out, W_out)``.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, radix: int = 2, reduction_factor: int = 4,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        self.radix, self.groups, self.channels = radix, groups, channels
        if dcn is not None:
            dcn = dict(dcn)
            if not dcn.pop('fallback_on_stride', False):
                if conv_cfg is not None:
                    raise ValueError('SplitAttentionConv2d: conv_cfg and dcn cannot be combined (as MMDetection)')
                conv_cfg = dcn
        self.conv = build_conv_layer(conv_cfg, in_channels, channels * radix, kernel_size, stride=stride,
                                     padding=padding, dilation=dilation, groups=groups * radix, bias=False)
        self.norm0_name, norm0 = build_norm_layer(norm_cfg, channels * radix, postfix=0)
        self.add_module(self.norm0_name, norm0)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = build_conv_layer(None, channels, inter_channels, 1, groups=groups)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, inter_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = build_conv_layer(None, inter_channels, channels * radix, 1, groups=groups)

    @property
    def norm0(self) -> nn.Module:
        return getattr(self, self.norm0_name)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _attention(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, groups * radix * c, 1, 1) logits -> weights, softmax over the radix splits per group,
        laid out radix-major ``(B, radix * groups * c)`` to match the conv's output splits."""
        b = logits.size(0)
        if self.radix > 1:
            x = logits.view(b, self.groups, self.radix, -1).transpose(1, 2)
            return F.softmax(x, dim=1).reshape(b, -1)
        return torch.sigmoid(logits).reshape(b, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm0(self.conv(x)))
        b = x.size(0)
        splits = x.view(b, self.radix, -1, *x.shape[2:]) if self.radix > 1 else None
        gap = splits.sum(dim=1) if self.radix > 1 else x
        gap = self.relu(self.norm1(self.fc1(F.adaptive_avg_pool2d(gap, 1))))
        atten = self._attention(self.fc2(gap)).view(b, -1, 1, 1)
        if self.radix > 1:
            out = (atten.view(b, self.radix, -1, 1, 1) * splits).sum(dim=1)
        else:
            out = atten * x
        return out.contiguous()

"""Switchable atrous convolution (SAC) of DetectoRS (Qiao et al., 2021), registered as ``'SAC'``
(mmcv's name for ``SAConv2d``) with mmcv's parameters and ``state_dict`` keys, in pure PyTorch
(the deformable variant on ``torchvision.ops.deform_conv2d``; mmcv's needs compiled ops).

Keys: ``weight``, ``bias``, ``weight_gamma`` / ``weight_beta`` (adaptive weight standardisation,
mmcv's ``ConvAWS2d``), ``weight_diff`` (the large-dilation weight is ``weight + weight_diff``),
``switch``, ``pre_context``, ``post_context`` and, with ``use_deform``, ``offset_s`` / ``offset_l``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.conv_ws import ConvAWS2d

from .conv_registry import register_conv_layer
from .deform_conv import safe_deform_conv2d


@register_conv_layer('SAC')
class SAConv2d(ConvAWS2d):
    """``out = s * conv(x, w, d) + (1 - s) * conv(x, w + dw, 3d)`` with a per-pixel switch ``s``
    (a 1x1 conv of the 5x5-averaged input), plus global-context 1x1 convs before and after.

    Args: as ``nn.Conv2d``, and ``use_deform``: both branches deformable, their offsets predicted
    from the 5x5-averaged input (``offset_s``, ``offset_l``: 3x3 convs, one offset field).

    ``forward(x (B, in_channels, H, W)) -> (B, out_channels, H_out, W_out)``. A fresh layer
    (``switch`` bias 1, weights 0; zero context, offsets and ``weight_diff``) is a plain
    weight-standardised conv.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, use_deform=False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.use_deform = use_deform
        self.switch = nn.Conv2d(self.in_channels, 1, kernel_size=1, stride=stride, bias=True)
        self.weight_diff = nn.Parameter(torch.zeros_like(self.weight))
        self.pre_context = nn.Conv2d(self.in_channels, self.in_channels, kernel_size=1, bias=True)
        self.post_context = nn.Conv2d(self.out_channels, self.out_channels, kernel_size=1, bias=True)
        if self.use_deform:
            # 18 = 2 * 3 * 3: one (dy, dx) field for a 3x3 kernel, as mmcv.
            self.offset_s = nn.Conv2d(self.in_channels, 18, kernel_size=3, padding=1, stride=stride, bias=True)
            self.offset_l = nn.Conv2d(self.in_channels, 18, kernel_size=3, padding=1, stride=stride, bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's init, also run by mmengine after a parent's ``init_cfg`` (e.g. a backbone's Kaiming)."""
        nn.init.zeros_(self.switch.weight)
        nn.init.ones_(self.switch.bias)
        self.weight_diff.data.zero_()
        for m in (self.pre_context, self.post_context) + ((self.offset_s, self.offset_l) if self.use_deform else ()):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def _branch(self, x, avg_x, weight, scale: int, offset_conv):
        padding = tuple(scale * p for p in self.padding)
        dilation = tuple(scale * d for d in self.dilation)
        if self.use_deform:
            return safe_deform_conv2d(x, offset_conv(avg_x), weight, None, stride=self.stride, padding=padding,
                                      dilation=dilation)
        return F.conv2d(x, weight, None, self.stride, padding, dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pre_context(F.adaptive_avg_pool2d(x, 1)).expand_as(x)
        avg_x = F.avg_pool2d(F.pad(x, pad=(2, 2, 2, 2), mode='reflect'), kernel_size=5, stride=1)
        switch = self.switch(avg_x)
        weight = self._get_weight(self.weight)
        # mmcv adds neither branch's bias (its conv calls pass a zero bias).
        out_s = self._branch(x, avg_x, weight, 1, getattr(self, 'offset_s', None))
        out_l = self._branch(x, avg_x, weight + self.weight_diff, 3, getattr(self, 'offset_l', None))
        out = switch * out_s + (1 - switch) * out_l
        return out + self.post_context(F.adaptive_avg_pool2d(out, 1)).expand_as(out)

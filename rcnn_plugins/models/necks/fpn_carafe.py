"""FPN with a configurable top-down upsampler (CARAFE by default), registered as ``'FPN_CARAFE'``.

MMDetection 3.x's arguments, defaults and ``state_dict`` keys: ``lateral_convs.{i}``,
``fpn_convs.{i}`` (``ConvModule``; extra levels append a stride-2 lateral and a 3x3 output conv) and
``upsample_modules.{i}`` (``CARAFEPack``: ``channel_compressor``, ``content_encoder``). The CARAFE
upsampler is :class:`rcnn_plugins.models.layers.carafe.CARAFEPack`, pure PyTorch.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_upsample_layer
from mmengine.model import BaseModule, xavier_init

from rcnn_plugins.models.layers.carafe import CARAFEPack
from rcnn_plugins.registry import MODELS

_UPSAMPLERS = ('nearest', 'bilinear', 'deconv', 'pixel_shuffle', 'carafe', None)


@MODELS.register_module()
class FPN_CARAFE(BaseModule):
    """Feature pyramid whose top-down path upsamples each coarser lateral by 2 with ``upsample_cfg``
    (CARAFE, nearest, bilinear, deconv or pixel shuffle) before adding it to the finer one.

    Args:
        in_channels: channels of each backbone level, finest first.
        out_channels: channels of every output level.
        num_outs: output levels; those beyond the used backbone levels are extra ones, each a
            stride-2 3x3 conv of the previous lateral (the first on the last used input), which join
            the top-down path (they are upsampled into the level below) and get their own 3x3 conv.
        start_level, end_level: used backbone levels (``end_level=-1``: the last; extra levels need it).
        norm_cfg, act_cfg: given to every ``ConvModule`` (convs have a bias only without a norm).
        order: ``('conv', 'norm', 'act')`` or ``('act', 'conv', 'norm')``.
        upsample_cfg: ``dict(type=<one of nearest, bilinear, deconv, pixel_shuffle, carafe>, ...)``;
            ``deconv`` and ``pixel_shuffle`` need ``upsample_kernel``; ``carafe`` takes ``CARAFEPack``'s
            ``up_kernel``, ``up_group``, ``encoder_kernel``, ``encoder_dilation``.
        init_cfg: must be None (weights are set by :meth:`init_weights`, as MMDetection).

    ``forward(inputs)``: ``len(in_channels)`` tensors ``(B, C_i, H_i, W_i)`` -> ``num_outs`` tensors
    ``(B, out_channels, H_l, W_l)``, finest first. An upsampled map larger than the finer level
    (odd sizes) is cropped to it.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 norm_cfg=None,
                 act_cfg=None,
                 order=('conv', 'norm', 'act'),
                 upsample_cfg=dict(type='carafe', up_kernel=5, up_group=1, encoder_kernel=3, encoder_dilation=1),
                 init_cfg=None):
        if init_cfg is not None:
            raise ValueError('FPN_CARAFE: init_cfg must be None (its init_weights sets Xavier convs and the '
                             'CARAFE init, as in MMDetection); remove init_cfg from the neck config')
        super().__init__(init_cfg)
        if not isinstance(in_channels, Sequence) or isinstance(in_channels, str) or not in_channels:
            raise TypeError(f'FPN_CARAFE: in_channels must be a non-empty list of ints, got {in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.with_bias = norm_cfg is None
        self.order = tuple(order)
        if self.order not in (('conv', 'norm', 'act'), ('act', 'conv', 'norm')):
            raise ValueError(f"FPN_CARAFE: order must be ('conv', 'norm', 'act') or ('act', 'conv', 'norm'), "
                             f'got {order!r}')
        self.upsample_cfg = dict(upsample_cfg)
        self.upsample = self.upsample_cfg.get('type')
        if self.upsample not in _UPSAMPLERS:
            raise ValueError(f'FPN_CARAFE: upsample_cfg type must be one of {_UPSAMPLERS}, got {self.upsample!r}')
        if self.upsample in ('deconv', 'pixel_shuffle'):
            if self.upsample_cfg.get('upsample_kernel', 0) <= 0:
                raise ValueError(f"FPN_CARAFE: upsample_cfg type={self.upsample!r} needs upsample_kernel > 0")
            self.upsample_kernel = self.upsample_cfg.pop('upsample_kernel')

        if end_level == -1 or end_level == self.num_ins - 1:
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ValueError(f'FPN_CARAFE: num_outs={num_outs} is less than the {self.num_ins - start_level} '
                                 f'backbone levels used (start_level={start_level})')
        else:
            if not 0 <= start_level <= end_level < self.num_ins or num_outs != end_level - start_level + 1:
                raise ValueError(f'FPN_CARAFE: with end_level={end_level}, num_outs must be end_level - '
                                 f'start_level + 1 (a truncated pyramid has no extra levels), got {num_outs}')
            self.backbone_end_level = end_level + 1
        self.start_level = start_level
        self.end_level = end_level

        self.relu = nn.ReLU(inplace=False)
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        self.upsample_modules = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(self._conv(in_channels[i], 1))
            self.fpn_convs.append(self._conv(out_channels, 3, padding=1))
            if i != self.backbone_end_level - 1:
                self.upsample_modules.append(self._upsampler())
        for i in range(num_outs - self.backbone_end_level + start_level):
            in_ch = in_channels[self.backbone_end_level - 1] if i == 0 else out_channels
            self.upsample_modules.append(self._upsampler())
            self.fpn_convs.append(self._conv(out_channels, 3, padding=1))
            self.lateral_convs.append(self._conv(in_ch, 3, stride=2, padding=1))

    def _conv(self, in_ch: int, kernel: int, **kwargs) -> ConvModule:
        return ConvModule(in_ch, self.out_channels, kernel, norm_cfg=self.norm_cfg, bias=self.with_bias,
                          act_cfg=self.act_cfg, inplace=False, order=self.order, **kwargs)

    def _upsampler(self) -> nn.Module:
        ch = self.out_channels
        cfg = {k: v for k, v in self.upsample_cfg.items() if k != 'type'}
        if self.upsample == 'carafe':
            return CARAFEPack(channels=ch, scale_factor=2, **cfg)
        if self.upsample == 'deconv':
            pad = (self.upsample_kernel - 1) // 2
            cfg.update(in_channels=ch, out_channels=ch, kernel_size=self.upsample_kernel, stride=2, padding=pad,
                       output_padding=pad)
        elif self.upsample == 'pixel_shuffle':
            cfg.update(in_channels=ch, out_channels=ch, scale_factor=2, upsample_kernel=self.upsample_kernel)
        elif self.upsample is None:
            return nn.Identity()  # MMDetection adds the coarser map unresized (cropped); kept for parity
        else:
            cfg.update(scale_factor=2, mode=self.upsample, align_corners=None if self.upsample == 'nearest' else False)
        return build_upsample_layer(dict(type=self.upsample, **cfg))

    def init_weights(self) -> None:
        """Xavier-uniform convs and deconvs, then CARAFE's own init (MMDetection's)."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                xavier_init(m, distribution='uniform')
        for m in self.modules():
            if isinstance(m, CARAFEPack):
                m.init_weights()

    @staticmethod
    def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a + b`` with ``b`` cropped to ``a``'s size (an upsampled odd-sized map is one pixel larger)."""
        if b.shape[2] < a.shape[2] or b.shape[3] < a.shape[3]:
            raise ValueError(f'FPN_CARAFE: upsampled map {tuple(b.shape)} is smaller than the finer level '
                             f'{tuple(a.shape)}; the input sizes must halve from level to level')
        return a + b[:, :, :a.shape[2], :a.shape[3]]

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'FPN_CARAFE was built for {self.num_ins} input levels '
                             f'(in_channels={self.in_channels}), got {len(inputs)}')
        used = self.backbone_end_level - self.start_level
        laterals = []
        for i, conv in enumerate(self.lateral_convs):
            # Backbone levels, then extra levels, each from the previous lateral (the first extra one
            # from the last used input).
            if i <= used:
                x = inputs[min(i + self.start_level, len(inputs) - 1)]
            else:
                x = laterals[-1]
            laterals.append(conv(x))
        for i in range(len(laterals) - 1, 0, -1):
            up = self.upsample_modules[i - 1](laterals[i])
            laterals[i - 1] = self._add(laterals[i - 1], up)
        return tuple(conv(lat) for conv, lat in zip(self.fpn_convs, laterals))

"""DetectoRS's ResNet (Qiao et al., 2021), registered as ``'DetectoRS_ResNet'``: ResNet whose 3x3
convs can be switchable atrous convs (``sac``, ``stage_with_sac``) and whose stages can take the
recursive feature pyramid's features (``rfp_inplanes``: a 1x1 ``rfp_conv`` in the first block of
stages 2-4, added before the block's last ReLU). MMDetection's arguments and keys.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer

from rcnn_plugins.registry import MODELS
from .resnet import ResNet
from .resnet_blocks import Bottleneck


class DetectoRSBottleneck(Bottleneck):
    """Bottleneck with an optional SAC 3x3 conv and an optional RFP input (``rfp_conv``, zero-init).

    ``forward(x)`` is Bottleneck's; ``rfp_forward(x (B, inplanes, H, W), rfp_feat (B, rfp_inplanes,
    H / stride, W / stride) or None) -> (B, 4 * planes, H / stride, W / stride)``.
    """

    def __init__(self, inplanes: int, planes: int, rfp_inplanes: Optional[int] = None, sac: Optional[dict] = None,
                 **kwargs):
        self.sac = sac
        super().__init__(inplanes, planes, **kwargs)
        self.rfp_inplanes = rfp_inplanes
        if rfp_inplanes:
            self.rfp_conv = build_conv_layer(None, rfp_inplanes, planes * self.expansion, 1, stride=1, bias=True)

    def _conv2_cfg(self) -> Optional[dict]:
        return self.sac if self.sac is not None else super()._conv2_cfg()

    def init_weights(self) -> None:
        super().init_weights()
        if self.rfp_inplanes:  # the RFP path starts switched off (MMDetection's Constant 0 init)
            nn.init.zeros_(self.rfp_conv.weight)
            nn.init.zeros_(self.rfp_conv.bias)

    def rfp_forward(self, x: torch.Tensor, rfp_feat: Optional[torch.Tensor]) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        if self.rfp_inplanes:
            out = out + self.rfp_conv(rfp_feat)
        return self.relu(out)


@MODELS.register_module()
class DetectoRS_ResNet(ResNet):  # noqa: N801  (MMDetection's type name)
    """ResNet-50/101/152 for DetectoRS.

    Args:
        sac: conv config of the 3x3 convs of the stages in ``stage_with_sac``
            (``dict(type='SAC', use_deform=True)``).
        stage_with_sac: one bool per stage.
        rfp_inplanes: channels of the RFP features fed to stages 2-4 (the FPN's ``out_channels``);
            None for the first backbone of an RFP detector.
        output_img: put the input image first in the output tuple (what ``RFP`` expects).
        **kwargs: ResNet's arguments.

    ``forward(x (B, 3, H, W))`` returns ResNet's feature tuple (``(x,) + features`` with
    ``output_img``); ``rfp_forward(x, rfp_feats)`` runs it with ``rfp_feats[i]`` added in stage ``i``.
    """
    arch_settings = {
        50: (DetectoRSBottleneck, (3, 4, 6, 3)),
        101: (DetectoRSBottleneck, (3, 4, 23, 3)),
        152: (DetectoRSBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, sac: Optional[dict] = None, stage_with_sac: Sequence[bool] = (False, False, False, False),
                 rfp_inplanes: Optional[int] = None, output_img: bool = False, **kwargs):
        if sac is not None and len(stage_with_sac) != kwargs.get('num_stages', 4):
            raise ValueError(f'stage_with_sac {tuple(stage_with_sac)} needs one bool per stage')
        self.sac, self.stage_with_sac = sac, tuple(stage_with_sac)
        self.rfp_inplanes, self.output_img = rfp_inplanes, output_img
        super().__init__(**kwargs)

    def stage_kwargs(self, stage_idx: int) -> dict:
        return dict(sac=self.sac if self.sac is not None and self.stage_with_sac[stage_idx] else None,
                    first_block_kwargs=dict(rfp_inplanes=self.rfp_inplanes if stage_idx > 0 else None))

    def forward(self, x: torch.Tensor):
        outs = super().forward(x)
        return (x,) + tuple(outs) if self.output_img else outs

    def rfp_forward(self, x: torch.Tensor, rfp_feats):
        """Backbone pass with ``rfp_feats[i]`` (``(B, rfp_inplanes, h_i, w_i)``, level ``i`` of the
        previous pyramid) added in the first block of stage ``i >= 1``."""
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            rfp_feat = rfp_feats[i] if i > 0 else None
            for block in getattr(self, name):
                x = block.rfp_forward(x, rfp_feat)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

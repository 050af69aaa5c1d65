"""Recursive feature pyramid (RFP) of DetectoRS (Qiao et al., 2021), registered as ``'RFP'``:
an FPN whose outputs are fed back, through ASPP, into a second backbone pass (``rfp_modules``,
DetectoRS_ResNets with ``rfp_inplanes``), fused with the previous pyramid by a learned sigmoid gate.
MMDetection's arguments and keys (``rfp_modules.{i}.*``, ``rfp_aspp.aspp.{j}``, ``rfp_weight``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleList

from rcnn_plugins.registry import MODELS, build_or_use
from .fpn import FPN


class ASPP(BaseModule):
    """Atrous spatial pyramid pooling: one conv per dilation (3x3, or 1x1 for dilation 1) with
    ReLU, the last applied to the global average, all concatenated.

    ``forward(x (B, in_channels, H, W)) -> (B, len(dilations) * out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, dilations=(1, 3, 6, 1),
                 init_cfg=dict(type='Kaiming', layer='Conv2d')):
        super().__init__(init_cfg)
        if dilations[-1] != 1:
            raise ValueError(f'ASPP: the last dilation is the global-pooling branch and must be 1, got {dilations}')
        self.aspp = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, kernel_size=3 if d > 1 else 1, dilation=d,
                      padding=d if d > 1 else 0, bias=True) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [F.relu(conv(x)) for conv in self.aspp[:-1]]
        outs.append(F.relu(self.aspp[-1](F.adaptive_avg_pool2d(x, 1))).expand_as(outs[-1]))
        return torch.cat(outs, dim=1)


@MODELS.register_module()
class RFP(FPN):
    """FPN + ``rfp_steps - 1`` recursive backbone passes.

    Args:
        rfp_steps: pyramid passes (2 in DetectoRS).
        rfp_backbone: config (or instance) of each extra backbone pass (``DetectoRS_ResNet`` with
            ``rfp_inplanes = out_channels``).
        aspp_out_channels, aspp_dilations: of the ASPP applied to pyramid levels 1.. before
            feeding them back (``len(aspp_dilations) * aspp_out_channels`` must equal ``rfp_inplanes``).
        **kwargs: FPN's arguments. ``init_cfg`` is not accepted (as MMDetection): the extra
            backbones initialise themselves (their pretrained weights).

    ``forward(inputs)``: ``inputs = (img (B, 3, H, W),) + backbone features`` (the backbone's
    ``output_img=True``); returns FPN's output tuple.
    """

    def __init__(self, rfp_steps: int, rfp_backbone, aspp_out_channels: int, aspp_dilations=(1, 3, 6, 1),
                 init_cfg=None, **kwargs):
        if init_cfg is not None:
            raise ValueError('RFP: init_cfg is not accepted (as MMDetection): the recursive backbones load '
                             'their own pretrained weights; remove it')
        super().__init__(**kwargs)
        self.rfp_steps = rfp_steps
        self.rfp_modules = ModuleList(build_or_use(MODELS, rfp_backbone if i == 1 else dict(rfp_backbone))
                                      for i in range(1, rfp_steps))
        self.rfp_aspp = ASPP(self.out_channels, aspp_out_channels, aspp_dilations)
        self.rfp_weight = nn.Conv2d(self.out_channels, 1, kernel_size=1, stride=1, padding=0, bias=True)

    def init_weights(self) -> None:
        """FPN's convs Xavier-uniform, each recursive backbone its own init (pretrained weights),
        ASPP Kaiming, the fusion gate zero (sigmoid 0.5). FPN's ``init_cfg`` is not applied to the
        whole module, so it does not overwrite the recursive backbones."""
        for convs in (self.lateral_convs, self.fpn_convs):
            for m in convs.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        for module in self.rfp_modules:
            module.init_weights()
        self.rfp_aspp.init_weights()
        nn.init.zeros_(self.rfp_weight.weight)
        nn.init.zeros_(self.rfp_weight.bias)
        self._is_init = True

    def forward(self, inputs):
        inputs = list(inputs)
        if len(inputs) != len(self.in_channels) + 1:
            raise ValueError(f'RFP expects the image followed by {len(self.in_channels)} feature maps (set the '
                             f"backbone's output_img=True), got {len(inputs)} inputs")
        img = inputs.pop(0)
        x = super().forward(tuple(inputs))
        for rfp_module in self.rfp_modules:
            rfp_feats = [x[0]] + [self.rfp_aspp(x[i]) for i in range(1, len(x))]
            x_idx = super().forward(rfp_module.rfp_forward(img, rfp_feats))
            x_new = []
            for new, old in zip(x_idx, x):
                gate = torch.sigmoid(self.rfp_weight(new))
                x_new.append(gate * new + (1 - gate) * old)
            x = x_new
        return tuple(x)

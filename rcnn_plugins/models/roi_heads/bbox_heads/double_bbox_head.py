"""``DoubleConvFCBBoxHead``: Double-Head R-CNN's box head (MMDetection's name, arguments and keys)::

    cls RoI features (C, 7, 7) -> fc_branch (num_fcs fcs) -> fc_cls
    reg RoI features (C, 7, 7) -> res_block (C -> conv_out_channels) -> conv_branch (num_convs
                                  ResNet bottlenecks) -> average pool -> fc_reg

The paper's finding: fcs are better at telling classes apart, convolutions at localising.
"""
from typing import Optional, Tuple

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from ....registry import MODELS
from ...backbones.resnet import Bottleneck
from .bbox_head import BBoxHead


class BasicResBlock(BaseModule):
    """3x3 conv + 1x1 conv (C_in -> C_out) with a 1x1-conv shortcut, BN after each conv, ReLU at the end
    (the first conv of the head's regression branch; keys ``conv1``, ``conv2``, ``conv_identity``)."""

    def __init__(self, in_channels: int, out_channels: int, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv1 = ConvModule(in_channels, in_channels, 3, padding=1, bias=False, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg)
        self.conv2 = ConvModule(in_channels, out_channels, 1, bias=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                act_cfg=None)
        self.conv_identity = ConvModule(in_channels, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                        act_cfg=None)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """(R, C_in, h, w) -> (R, C_out, h, w)."""
        return self.relu(self.conv2(self.conv1(x)) + self.conv_identity(x))


@MODELS.register_module()
class DoubleConvFCBBoxHead(BBoxHead):
    """Separate classification (fc) and regression (conv) branches.

    Args:
        num_convs: bottleneck blocks of the regression branch (> 0; 4 in the paper's config).
        num_fcs: fcs of the classification branch (> 0; 2).
        conv_out_channels: width of the regression branch (1024); bottlenecks of width / 4.
        fc_out_channels: width of the fcs (1024).
        conv_cfg, norm_cfg: of the bottlenecks (the res block always uses BN, as MMDetection).
        **kwargs: ``BBoxHead`` arguments (``with_avg_pool`` defaults to True and must stay True).

    ``forward(x_cls (R, C, 7, 7), x_reg (R, C, 7, 7) = x_cls) -> (cls_score (R, num_classes + 1),
    bbox_pred (R, 4C or 4))``.
    """

    def __init__(self, num_convs: int = 0, num_fcs: int = 0, conv_out_channels: int = 1024,
                 fc_out_channels: int = 1024, conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'),
                 init_cfg=dict(type='Normal', override=[dict(type='Normal', name='fc_cls', std=0.01),
                                                        dict(type='Normal', name='fc_reg', std=0.001),
                                                        dict(type='Xavier', name='fc_branch',
                                                             distribution='uniform')]),
                 **kwargs) -> None:
        kwargs.setdefault('with_avg_pool', True)
        super().__init__(init_cfg=init_cfg, **kwargs)
        if not self.with_avg_pool:
            raise ValueError('DoubleConvFCBBoxHead: with_avg_pool must be True (the conv branch is pooled)')
        if num_convs <= 0 or num_fcs <= 0:
            raise ValueError(f'DoubleConvFCBBoxHead: num_convs and num_fcs must be > 0, got {num_convs}, {num_fcs}')
        self.num_convs, self.num_fcs = num_convs, num_fcs
        self.conv_out_channels, self.fc_out_channels = conv_out_channels, fc_out_channels
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.res_block = BasicResBlock(self.in_channels, conv_out_channels)
        self.conv_branch = ModuleList(  # mmengine's: init_weights reaches the blocks
            Bottleneck(conv_out_channels, conv_out_channels // 4, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for _ in range(num_convs))
        self.fc_branch = nn.ModuleList(
            nn.Linear(self.in_channels * self.roi_feat_area if i == 0 else fc_out_channels, fc_out_channels)
            for i in range(num_fcs))
        self.fc_reg = nn.Linear(conv_out_channels, self.reg_out_channels)
        self.fc_cls = nn.Linear(fc_out_channels, self.num_classes + 1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, x_reg: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """x: the classification branch's RoI features (MMDetection's ``x_cls``, passed first as there);
        x_reg: the regression branch's (the enlarged RoIs'); None reads ``x`` in both branches."""
        x_cls = x
        x_reg = x if x_reg is None else x_reg
        x_conv = self.res_block(x_reg)
        for block in self.conv_branch:
            x_conv = block(x_conv)
        bbox_pred = self.fc_reg(self.avg_pool(x_conv).flatten(1))
        x_fc = x_cls.flatten(1)
        for fc in self.fc_branch:
            x_fc = self.relu(fc(x_fc))
        return self.fc_cls(x_fc), bbox_pred

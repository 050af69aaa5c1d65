"""``ConvFCBBoxHead`` and ``Shared2FCBBoxHead``: box heads with conv / fc layers before the predictors.

Layout (MMDetection's)::

    shared convs -> shared fcs -> cls convs -> cls fcs -> fc_cls
                               \\-> reg convs -> reg fcs -> fc_reg

``Shared2FCBBoxHead`` (Faster R-CNN's head) is two shared fcs: 256*7*7 -> 1024 -> 1024.
"""
from typing import Optional, Tuple

from mmcv.cnn import ConvModule
from torch import Tensor, nn

from ....registry import MODELS
from .bbox_head import BBoxHead


@MODELS.register_module()
class ConvFCBBoxHead(BBoxHead):
    """Box head with configurable shared and per-branch conv (3x3) and fc layers.

    Args:
        num_shared_convs, num_shared_fcs, num_cls_convs, num_cls_fcs, num_reg_convs, num_reg_fcs:
            layer counts of each part.
        conv_out_channels / fc_out_channels: width of the convs / fcs.
        conv_cfg, norm_cfg: passed to the convs' ``ConvModule``.
        **kwargs: ``BBoxHead`` arguments.
    """

    def __init__(self, num_shared_convs: int = 0, num_shared_fcs: int = 0, num_cls_convs: int = 0,
                 num_cls_fcs: int = 0, num_reg_convs: int = 0, num_reg_fcs: int = 0,
                 conv_out_channels: int = 256, fc_out_channels: int = 1024,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None, init_cfg=None, **kwargs) -> None:
        counts = dict(num_shared_convs=num_shared_convs, num_shared_fcs=num_shared_fcs, num_cls_convs=num_cls_convs,
                      num_cls_fcs=num_cls_fcs, num_reg_convs=num_reg_convs, num_reg_fcs=num_reg_fcs)
        bad = {k: v for k, v in counts.items() if v < 0}
        if bad:
            raise ValueError(f'ConvFCBBoxHead: layer counts must be >= 0, got {bad}')
        if num_shared_fcs > 0 and (num_cls_convs > 0 or num_reg_convs > 0):
            raise ValueError('ConvFCBBoxHead: branch convs cannot follow shared fcs (their output is flat); '
                             'set num_cls_convs = num_reg_convs = 0 or num_shared_fcs = 0')
        super().__init__(init_cfg=init_cfg, **kwargs)
        self.num_shared_convs, self.num_shared_fcs = num_shared_convs, num_shared_fcs
        self.num_cls_convs, self.num_cls_fcs = num_cls_convs, num_cls_fcs
        self.num_reg_convs, self.num_reg_fcs = num_reg_convs, num_reg_fcs
        self.conv_out_channels, self.fc_out_channels = conv_out_channels, fc_out_channels
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg

        self.shared_convs, self.shared_fcs, shared_dim = self._add_conv_fc_branch(
            num_shared_convs, num_shared_fcs, self.in_channels, is_shared=True)
        self.cls_convs, self.cls_fcs, cls_dim = self._add_conv_fc_branch(num_cls_convs, num_cls_fcs, shared_dim)
        self.reg_convs, self.reg_fcs, reg_dim = self._add_conv_fc_branch(num_reg_convs, num_reg_fcs, shared_dim)
        if num_shared_fcs == 0:
            # A branch without fcs feeds its flattened feature map straight to the predictor.
            if num_cls_fcs == 0:
                cls_dim *= self.roi_feat_area
            if num_reg_fcs == 0:
                reg_dim *= self.roi_feat_area
        self.relu = nn.ReLU(inplace=True)
        # Replace the base head's predictors with ones sized for this head's last layers.
        self.fc_cls = nn.Linear(cls_dim, self.num_classes + 1)
        self.fc_reg = nn.Linear(reg_dim, self.reg_out_channels)
        if init_cfg is None:
            # Base-head Normal init of the predictors, plus Xavier-uniform fcs (MMDetection's init).
            self.init_cfg += [dict(type='Xavier', distribution='uniform',
                                   override=[dict(name='shared_fcs'), dict(name='cls_fcs'), dict(name='reg_fcs')])]

    def _add_conv_fc_branch(self, num_convs: int, num_fcs: int, in_channels: int,
                            is_shared: bool = False) -> Tuple[nn.ModuleList, nn.ModuleList, int]:
        """Build ``num_convs`` 3x3 ConvModules then ``num_fcs`` Linears; returns them and the output width."""
        last_dim = in_channels
        convs = nn.ModuleList()
        for i in range(num_convs):
            convs.append(ConvModule(last_dim if i == 0 else self.conv_out_channels, self.conv_out_channels, 3,
                                    padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        if num_convs > 0:
            last_dim = self.conv_out_channels
        fcs = nn.ModuleList()
        if num_fcs > 0:
            # The first fc of the head reads the flattened (C, 7, 7) map.
            if is_shared or self.num_shared_fcs == 0:
                last_dim *= self.roi_feat_area
            for i in range(num_fcs):
                fcs.append(nn.Linear(last_dim if i == 0 else self.fc_out_channels, self.fc_out_channels))
            last_dim = self.fc_out_channels
        return convs, fcs, last_dim

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, C, 7, 7) -> cls_score (R, num_classes + 1), bbox_pred (R, 4*num_classes or 4)."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        x_cls, x_reg = x, x
        for conv in self.cls_convs:
            x_cls = conv(x_cls)
        x_cls = x_cls.flatten(1)
        for fc in self.cls_fcs:
            x_cls = self.relu(fc(x_cls))
        for conv in self.reg_convs:
            x_reg = conv(x_reg)
        x_reg = x_reg.flatten(1)
        for fc in self.reg_fcs:
            x_reg = self.relu(fc(x_reg))
        return self.fc_cls(x_cls), self.fc_reg(x_reg)


@MODELS.register_module()
class Shared2FCBBoxHead(ConvFCBBoxHead):
    """Two shared fully connected layers (Faster R-CNN's box head)."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs) -> None:
        super().__init__(*args, num_shared_convs=0, num_shared_fcs=2, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels, **kwargs)

"""``ConvFCBBoxHead``, ``Shared2FCBBoxHead`` and ``Shared4Conv1FCBBoxHead``: box heads with conv / fc
layers before the predictors.

Layout (MMDetection's)::

    shared convs -> shared fcs -> cls convs -> cls fcs -> fc_cls
                               \\-> reg convs -> reg fcs -> fc_reg

``Shared2FCBBoxHead`` (Faster R-CNN's head) is two shared fcs: 256*7*7 -> 1024 -> 1024;
``Shared4Conv1FCBBoxHead`` four shared 3x3 convs and one fc. These are presets of the counts only.
"""
from typing import Optional, Tuple

from mmcv.cnn import ConvModule
from torch import Tensor, nn

from ....registry import MODELS
from .bbox_head import BBoxHead


def conv_fc_branch(num_convs: int, num_fcs: int, in_channels: int, conv_out_channels: int, fc_out_channels: int,
                   flatten_factor: int = 1, conv_cfg=None, norm_cfg=None) -> Tuple[nn.ModuleList, nn.ModuleList, int]:
    """``num_convs`` 3x3 ConvModules then ``num_fcs`` Linears, MMDetection's conv/fc branch layout.

    Args:
        in_channels: channels of the branch input.
        flatten_factor: the first fc reads ``last_dim * flatten_factor`` values (``roi_feat_area``
            when it reads the flattened (C, h, w) map, 1 after an average pool or another fc).

    Returns:
        (convs, fcs, width of the branch output).
    """
    last_dim = in_channels
    convs = nn.ModuleList(ConvModule(last_dim if i == 0 else conv_out_channels, conv_out_channels, 3, padding=1,
                                     conv_cfg=conv_cfg, norm_cfg=norm_cfg) for i in range(num_convs))
    if num_convs > 0:
        last_dim = conv_out_channels
    fcs = nn.ModuleList()
    if num_fcs > 0:
        last_dim *= flatten_factor
        fcs.extend(nn.Linear(last_dim if i == 0 else fc_out_channels, fc_out_channels) for i in range(num_fcs))
        last_dim = fc_out_channels
    return convs, fcs, last_dim


@MODELS.register_module()
class ConvFCBBoxHead(BBoxHead):
    """Box head with configurable shared and per-branch conv (3x3) and fc layers.

    Args:
        num_shared_convs, num_shared_fcs, num_cls_convs, num_cls_fcs, num_reg_convs, num_reg_fcs:
            layer counts of each part.
        conv_out_channels / fc_out_channels: width of the convs / fcs.
        conv_cfg, norm_cfg: passed to the convs' ``ConvModule`` (e.g. ``norm_cfg=dict(type='GN', num_groups=32)``).
        dropout: dropout probability after each fc's ReLU while training (0: none, MMDetection's head).
        **kwargs: ``BBoxHead`` arguments.
    """

    def __init__(self, num_shared_convs: int = 0, num_shared_fcs: int = 0, num_cls_convs: int = 0,
                 num_cls_fcs: int = 0, num_reg_convs: int = 0, num_reg_fcs: int = 0,
                 conv_out_channels: int = 256, fc_out_channels: int = 1024,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None, dropout: float = 0.0,
                 init_cfg=None, **kwargs) -> None:
        counts = dict(num_shared_convs=num_shared_convs, num_shared_fcs=num_shared_fcs, num_cls_convs=num_cls_convs,
                      num_cls_fcs=num_cls_fcs, num_reg_convs=num_reg_convs, num_reg_fcs=num_reg_fcs)
        bad = {k: v for k, v in counts.items() if v < 0}
        if bad:
            raise ValueError(f'ConvFCBBoxHead: layer counts must be >= 0, got {bad}')
        if num_shared_fcs > 0 and (num_cls_convs > 0 or num_reg_convs > 0):
            raise ValueError('ConvFCBBoxHead: branch convs cannot follow shared fcs (their output is flat); '
                             'set num_cls_convs = num_reg_convs = 0 or num_shared_fcs = 0')
        if not 0 <= dropout < 1:
            raise ValueError(f'{type(self).__name__}: dropout must be in [0, 1), got {dropout}')
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
        if num_shared_fcs == 0 and not self.with_avg_pool:
            # A branch without fcs feeds its flattened feature map straight to the predictor.
            if num_cls_fcs == 0:
                cls_dim *= self.roi_feat_area
            if num_reg_fcs == 0:
                reg_dim *= self.roi_feat_area
        self.relu = nn.ReLU(inplace=True)
        # Not in MMDetection (default 0: identical): dropout after each fc's ReLU while training, as
        # the VGG-16 fc6/fc7 heads of Fast / Faster R-CNN have it. No parameters: same state_dict.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # Replace the base head's predictors with ones sized for this head's last layers.
        self._build_predictors(cls_dim, reg_dim)
        if init_cfg is None:
            # Base-head Normal init of the predictors, plus Xavier-uniform fcs (MMDetection's init).
            self.init_cfg += [dict(type='Xavier', distribution='uniform',
                                   override=[dict(name='shared_fcs'), dict(name='cls_fcs'), dict(name='reg_fcs')])]

    def _add_conv_fc_branch(self, num_convs: int, num_fcs: int, in_channels: int,
                            is_shared: bool = False) -> Tuple[nn.ModuleList, nn.ModuleList, int]:
        """One branch of this head (see :func:`conv_fc_branch`)."""
        # The first fc of the head reads the flattened (C, 7, 7) map (or the pooled C-vector).
        flatten = (is_shared or self.num_shared_fcs == 0) and not self.with_avg_pool
        return conv_fc_branch(num_convs, num_fcs, in_channels, self.conv_out_channels, self.fc_out_channels,
                              self.roi_feat_area if flatten else 1, self.conv_cfg, self.norm_cfg)

    def _flat(self, x: Tensor) -> Tensor:
        """(R, C, h, w) -> (R, C*h*w), or (R, C) after the average pool; flat input passes."""
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        return x

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """(R, C, 7, 7) -> cls_score (R, num_classes + 1), bbox_pred (R, 4*num_classes or 4) (None for a
        branch switched off by ``with_cls``/``with_reg``)."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            x = self._flat(x)
            for fc in self.shared_fcs:
                x = self.dropout(self.relu(fc(x)))
        x_cls, x_reg = x, x
        for conv in self.cls_convs:
            x_cls = conv(x_cls)
        x_cls = self._flat(x_cls)
        for fc in self.cls_fcs:
            x_cls = self.dropout(self.relu(fc(x_cls)))
        for conv in self.reg_convs:
            x_reg = conv(x_reg)
        x_reg = self._flat(x_reg)
        for fc in self.reg_fcs:
            x_reg = self.dropout(self.relu(fc(x_reg)))
        return (self.fc_cls(x_cls) if self.with_cls else None), (self.fc_reg(x_reg) if self.with_reg else None)


@MODELS.register_module()
class Shared2FCBBoxHead(ConvFCBBoxHead):
    """Two shared fully connected layers (Faster R-CNN's box head)."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs) -> None:
        super().__init__(*args, num_shared_convs=0, num_shared_fcs=2, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels, **kwargs)


@MODELS.register_module()
class Shared4Conv1FCBBoxHead(ConvFCBBoxHead):
    """Four shared 3x3 convs then one shared fc (the GN heads of MMDetection's gn/ and Grid R-CNN configs)."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs) -> None:
        super().__init__(*args, num_shared_convs=4, num_shared_fcs=1, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels, **kwargs)

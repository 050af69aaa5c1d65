"""TridentResNet (TridentNet, Li et al., 2019, "Scale-Aware Trident Networks"), registered as ``'TridentResNet'``.

Stem and stages 1-2 are a plain ResNet; in the last (third) stage every Bottleneck's 3x3 conv is a
``TridentConv``: ``num_branch`` branches share all weights but use dilations ``trident_dilations``,
so one stage yields features for several object scales. The stage's output stacks the branches along
the batch (branch-major: ``k * B + i`` is image ``i`` of branch ``k``), which ``TridentFasterRCNN``
expects. In eval mode with ``test_branch_idx >= 0`` only that branch runs (batch ``B``).

MMDetection's arguments and ``state_dict`` keys (those of the ResNet it extends: ``layer3.0.conv2.weight``
is the shared trident weight), so its checkpoints load strict.
"""
from typing import List, Sequence, Union

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer

from rcnn_plugins.registry import MODELS
from ..layers.trident_conv import TridentConv
from .resnet import ResNet
from .resnet_blocks import Bottleneck, ResLayer


class TridentBottleneck(Bottleneck):
    """Bottleneck whose 3x3 conv is a ``TridentConv``; runs each branch through the block's layers.

    Args:
        trident_dilations: dilation of each branch's 3x3 conv.
        test_branch_idx: eval mode: ``-1`` all branches, ``k`` only branch ``k``.
        concat_output: return the branches concatenated along the batch (the stage's last block)
            instead of a list.
        others: as ``Bottleneck`` (``dcn`` is not supported: the 3x3 conv is the trident conv).

    ``forward(x)``: a ``(B, inplanes, H, W)`` tensor (shared by every branch) or a list of one per
    branch -> a list of ``(B, 4 * planes, H / stride, W / stride)`` per branch, or their concatenation
    ``(num_branch * B, ...)`` with ``concat_output``.
    """

    def __init__(self, trident_dilations: Sequence[int] = (1, 2, 3), test_branch_idx: int = 1,
                 concat_output: bool = False, **kwargs):
        if kwargs.get('dcn') is not None:
            raise ValueError('TridentBottleneck: dcn is not supported in the trident stage (its 3x3 conv is a '
                             'TridentConv; MMDetection silently ignores it there, see docs/MMDET_DIFFERENCES.md); set '
                             'stage_with_dcn False for the last stage')
        # Read by _make_conv2, which Bottleneck.__init__ calls.
        self.trident_dilations = tuple(trident_dilations)
        self.num_branch = len(self.trident_dilations)
        self.test_branch_idx = test_branch_idx
        self.concat_output = concat_output
        kwargs.pop('dilation', None)  # the branches' dilations replace the stage dilation
        super().__init__(**kwargs)

    def _make_conv2(self, width: int, groups: int = 1) -> None:
        self.norm2_name, norm2 = build_norm_layer(self.norm_cfg, width, postfix=2)
        self.conv2 = TridentConv(width, width, 3, stride=self.conv2_stride, trident_dilations=self.trident_dilations,
                                 test_branch_idx=self.test_branch_idx, bias=False)
        self.add_module(self.norm2_name, norm2)

    def _trident_residual(self, *xs: torch.Tensor) -> List[torch.Tensor]:
        # Branch by branch (3 at most), not stacked on the batch: BatchNorm in train mode must see
        # each branch's own statistics, as in MMDetection.
        out = [self._plugins(self.relu(self.norm1(self.conv1(b))), self.after_conv1_plugin_names) for b in xs]
        out = [self._plugins(self.relu(self.norm2(b)), self.after_conv2_plugin_names) for b in self.conv2(out)]
        out = [self._plugins(self.norm3(self.conv3(b)), self.after_conv3_plugin_names) for b in out]
        identity = xs if self.downsample is None else [self.downsample(b) for b in xs]
        return [o + i for o, i in zip(out, identity)]

    def forward(self, x: Union[torch.Tensor, List[torch.Tensor]]) -> Union[torch.Tensor, List[torch.Tensor]]:
        if isinstance(x, torch.Tensor):
            x = [x] * (self.num_branch if self.training or self.test_branch_idx == -1 else 1)
        if self.with_cp and any(b.requires_grad for b in x):
            out = cp.checkpoint(self._trident_residual, *x, use_reentrant=False)
        else:
            out = self._trident_residual(*x)
        out = [self.relu(b) for b in out]
        return torch.cat(out, dim=0) if self.concat_output else out


@MODELS.register_module()
class TridentResNet(ResNet):
    """ResNet-50/101/152 with 3 stages, the last made of ``TridentBottleneck`` blocks.

    Args:
        depth: 50, 101 or 152.
        num_branch: number of branches; must equal ``len(trident_dilations)``.
        test_branch_idx: eval mode: ``-1`` runs all branches (output batch ``num_branch * B``),
            ``k`` only branch ``k`` (batch ``B``). Training always runs all.
        trident_dilations: dilation of each branch in the last stage, e.g. ``(1, 2, 3)``.
        **kwargs: as ``ResNet``; ``num_stages`` must be 3 (stage 4 is the RoI head's shared head).

    ``forward(x (B, 3, H, W))``: as ``ResNet``; the last stage's map is
    ``(num_branch * B, 1024, H / 16, W / 16)`` (default strides), branch-major.
    """

    def __init__(self, depth: int, num_branch: int, test_branch_idx: int, trident_dilations: Sequence[int],
                 **kwargs):
        if num_branch != len(trident_dilations):
            raise ValueError(f'TridentResNet: num_branch ({num_branch}) must equal len(trident_dilations) '
                             f'({tuple(trident_dilations)})')
        if depth not in (50, 101, 152):
            raise ValueError(f'TridentResNet: depth must be 50, 101 or 152 (Bottleneck ResNets), got {depth}')
        if kwargs.get('num_stages', 4) != 3:
            raise ValueError(f'TridentResNet: num_stages must be 3 (the trident stage is the last), got '
                             f'{kwargs.get("num_stages", 4)}')
        if not -1 <= test_branch_idx < num_branch:
            raise ValueError(f'TridentResNet: test_branch_idx must be -1 or in 0..{num_branch - 1}, '
                             f'got {test_branch_idx}')
        # Read by stage_kwargs during ResNet.__init__ (plain attributes may precede Module.__init__).
        self.num_branch = num_branch
        self.test_branch_idx = test_branch_idx
        self.trident_dilations = tuple(trident_dilations)
        super().__init__(depth, **kwargs)

    def stage_kwargs(self, stage_idx: int) -> dict:
        if stage_idx != self.num_stages - 1:
            return {}
        return dict(trident_dilations=self.trident_dilations, test_branch_idx=self.test_branch_idx)

    def make_res_layer(self, **kwargs) -> ResLayer:
        if 'trident_dilations' not in kwargs:
            return super().make_res_layer(**kwargs)
        kwargs['block'] = TridentBottleneck
        layer = ResLayer(**kwargs)
        layer[-1].concat_output = True  # the stage returns one stacked tensor
        return layer

"""``TridentConv``: one convolution weight applied at several dilations (TridentNet, Li et al., 2019).

Each branch ``k`` convolves its own input with the same ``weight`` at dilation ``trident_dilations[k]``
and padding equal to that dilation (a 3x3 kernel keeps the spatial size at stride 1), so the branches
see different receptive fields with one set of parameters. ``state_dict`` keys: ``weight`` (and
``bias``), as MMDetection's ``TridentConv`` (so a ResNet checkpoint's ``conv2.weight`` loads into it).
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch.nn.modules.utils import _pair


class TridentConv(BaseModule):
    """Weight-shared convolution over ``len(trident_dilations)`` branches.

    Args:
        in_channels, out_channels, kernel_size, stride: as ``nn.Conv2d``.
        trident_dilations: dilation (and padding) of each branch, e.g. ``(1, 2, 3)``.
        test_branch_idx: in eval mode, ``-1`` runs every branch; ``k >= 0`` runs only branch ``k``
            (on a single input).
        bias: learn a bias (shared by the branches too).

    ``forward(inputs)``: a list of ``num_branch`` tensors ``(B, in_channels, H, W)`` (one in eval
    mode with ``test_branch_idx >= 0``) -> a list of as many ``(B, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 trident_dilations: Sequence[int] = (1, 2, 3), test_branch_idx: int = 1, bias: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        trident_dilations = tuple(trident_dilations)
        if not trident_dilations:
            raise ValueError('TridentConv: trident_dilations needs at least one dilation, e.g. (1, 2, 3)')
        if not -1 <= test_branch_idx < len(trident_dilations):
            raise ValueError(f'TridentConv: test_branch_idx must be -1 (all branches) or in '
                             f'0..{len(trident_dilations) - 1}, got {test_branch_idx}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.dilations = trident_dilations
        self.paddings = trident_dilations  # padding = dilation keeps a 3x3 conv's size at stride 1
        self.num_branch = len(trident_dilations)
        self.test_branch_idx = test_branch_idx
        self.with_bias = bias
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Kaiming-uniform, fan_in (what MMDetection's init_cfg of this conv asks for).
        nn.init.kaiming_uniform_(self.weight, a=0, mode='fan_in', nonlinearity='relu')
        if self.bias is not None:
            bound = 1 / math.sqrt(in_channels * math.prod(self.kernel_size))
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'kernel_size={self.kernel_size}, num_branch={self.num_branch}, '
                f'test_branch_idx={self.test_branch_idx}, stride={self.stride}, '
                f'dilations={self.dilations}, bias={self.with_bias}')

    def forward(self, inputs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if self.training or self.test_branch_idx == -1:
            if len(inputs) != self.num_branch:
                raise ValueError(f'TridentConv: got {len(inputs)} inputs for {self.num_branch} branches')
            return [F.conv2d(x, self.weight, self.bias, self.stride, d, d) for x, d in zip(inputs, self.dilations)]
        if len(inputs) != 1:
            raise ValueError(f'TridentConv: with test_branch_idx={self.test_branch_idx} in eval mode one input '
                             f'runs (one branch), got {len(inputs)}')
        d = self.dilations[self.test_branch_idx]
        return [F.conv2d(inputs[0], self.weight, self.bias, self.stride, d, d)]

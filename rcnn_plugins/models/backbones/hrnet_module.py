"""One multi-resolution module of HRNet (Sun et al., 2019): parallel branches, then exchange.

Not registered: :class:`rcnn_plugins.models.backbones.hrnet.HRNet` builds these. Module names are
MMDetection's (``branches.{b}.{k}``, ``fuse_layers.{i}.{j}.{...}``) so its checkpoints load.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, ModuleList, Sequential


class HRModule(BaseModule):
    """``num_branches`` parallel stacks of residual blocks (branch ``b`` at stride ``2**b`` relative to
    the first), followed by a fuse step: output ``i`` is ``relu(sum_j f_ij(x_j))`` with ``f_ii`` the
    identity, ``f_ij`` (``j > i``) a 1x1 conv + norm + nearest upsampling by ``2**(j-i)``, and ``f_ij``
    (``j < i``) ``i - j`` stride-2 3x3 conv + norm steps (ReLU between them).

    Args:
        num_branches: number of branches.
        blocks: block class (``BasicBlock`` or ``Bottleneck``).
        num_blocks, num_channels: per branch.
        in_channels: per branch; updated in place to the branches' output channels (as MMDetection).
        multiscale_output: fuse into every branch (True) or only into the first (False).
        with_cp, conv_cfg, norm_cfg, block_init_cfg: given to the blocks and convs.

    ``forward(x: list of (B, C_b, H / 2**b, W / 2**b))`` -> list of the same shapes (one entry when
    ``multiscale_output=False``). Sizes must halve exactly (pad inputs to a multiple of 32).
    """

    def __init__(self, num_branches: int, blocks, num_blocks: Sequence[int], in_channels: List[int],
                 num_channels: Sequence[int], multiscale_output: bool = True, with_cp: bool = False,
                 conv_cfg=None, norm_cfg=dict(type='BN'), block_init_cfg=None, init_cfg=None):
        super().__init__(init_cfg)
        for name, value in (('num_blocks', num_blocks), ('num_channels', num_channels),
                            ('in_channels', in_channels)):
            if len(value) != num_branches:
                raise ValueError(f'HRNet stage: num_branches={num_branches} but {name} has {len(value)} '
                                 f'entries ({tuple(value)}); give one per branch')
        self.in_channels = in_channels
        self.num_branches = num_branches
        self.multiscale_output = multiscale_output
        self.norm_cfg = norm_cfg
        self.conv_cfg = conv_cfg
        self.with_cp = with_cp
        self.block_init_cfg = block_init_cfg
        self.branches = ModuleList(self._branch(b, blocks, num_blocks[b], num_channels[b])
                                   for b in range(num_branches))
        self.fuse_layers = self._fuse_layers()
        self.relu = nn.ReLU(inplace=False)

    def _conv_norm(self, c_in: int, c_out: int, kernel: int, stride: int, relu: bool = False) -> nn.Sequential:
        layers = [build_conv_layer(self.conv_cfg, c_in, c_out, kernel_size=kernel, stride=stride,
                                   padding=kernel // 2, bias=False),
                  build_norm_layer(self.norm_cfg, c_out)[1]]
        return nn.Sequential(*layers, *([nn.ReLU(inplace=False)] if relu else []))

    def _branch(self, b: int, block, num_blocks: int, channels: int) -> Sequential:
        out = channels * block.expansion
        downsample = None
        if self.in_channels[b] != out:
            downsample = self._conv_norm(self.in_channels[b], out, 1, 1)
        common = dict(with_cp=self.with_cp, norm_cfg=self.norm_cfg, conv_cfg=self.conv_cfg,
                      init_cfg=self.block_init_cfg)
        layers = [block(self.in_channels[b], channels, stride=1, downsample=downsample, **common)]
        self.in_channels[b] = out
        layers += [block(out, channels, **common) for _ in range(1, num_blocks)]
        return Sequential(*layers)

    def _fuse_layers(self):
        if self.num_branches == 1:
            return None
        c = self.in_channels
        fuse = []
        for i in range(self.num_branches if self.multiscale_output else 1):
            row = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(nn.Sequential(*self._conv_norm(c[j], c[i], 1, 1),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode='nearest')))
                elif j == i:
                    row.append(None)
                else:
                    # i - j stride-2 steps; only the last changes the channels and has no ReLU.
                    row.append(nn.Sequential(*[
                        self._conv_norm(c[j], c[i], 3, 2) if k == i - j - 1 else self._conv_norm(c[j], c[j], 3, 2, True)
                        for k in range(i - j)]))
            fuse.append(nn.ModuleList(row))
        return nn.ModuleList(fuse)

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        if self.num_branches == 1:
            return [self.branches[0](x[0])]
        x = [branch(xb) for branch, xb in zip(self.branches, x)]
        outs = []
        for i, row in enumerate(self.fuse_layers):
            y = x[i]
            for j in range(self.num_branches):
                if j != i:
                    y = y + row[j](x[j])
            outs.append(self.relu(y))
        return outs

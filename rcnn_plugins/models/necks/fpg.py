"""Feature Pyramid Grids (Chen et al., 2020), registered as ``'FPG'``.

MMDetection 3.x's arguments, defaults and ``state_dict`` keys: ``lateral_convs.{i}`` (plain
``nn.Conv2d``), ``extra_downsamples.{i}``, ``fpn_transitions.{stack}.{level}.<same_up | same_down |
across_lateral | across_down | across_up | across_skip>.*`` and ``output_transition.{level}.conv_out.*``.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from rcnn_plugins.registry import MODELS
from .fpg_transitions import Identity, LastConv, UpInterpolationConv


@MODELS.register_module()
class FPG(BaseModule):
    """A grid of ``stack_times`` pyramid columns after the lateral 1x1 convs (column 0). In column
    ``s`` (direction ``paths[s]``: ``'bu'`` bottom-up or ``'td'`` top-down) level ``l`` is the sum of
    the transitions that exist: ``same`` (from the level just computed in this column: ``same_up``
    for bu, ``same_down`` for td), ``across_lateral`` (same level, previous column), ``across_up`` /
    ``across_down`` (the finer / coarser level of the previous column), ``across_skip`` (column 0).
    Levels whose ``skip_inds[l]`` contain ``s`` are copied from the previous column. Each output level
    is ``output_trans`` over its row (``'last_conv'``: a conv of the last column).

    Args:
        in_channels, out_channels, num_outs, start_level, end_level: as :class:`FPN`; levels past the
            used inputs are extra levels (max pooling, or stride-2 convs with ``add_extra_convs``).
        stack_times: number of grid columns after the first. paths: one ``'bu'``/``'td'`` per column.
        inter_channels: channels inside the grid (int, per-level list, or ``out_channels``).
        same_down_trans, same_up_trans, across_lateral_trans, across_down_trans, across_up_trans,
            across_skip_trans, output_trans: transition configs (``type`` one of ``'conv'``,
            ``'interpolation_conv'``, ``'last_conv'``, ``'identity'``, other keys to the module) or None.
        norm_cfg: kept for config compatibility (transitions take their own ``norm_cfg``).
        skip_inds: per output level, the columns where the level is not recomputed.
        init_cfg: mmengine init config (default: Caffe2-Xavier convs, unit norm weights).

    ``forward(inputs)``: ``len(in_channels)`` maps ``(B, C_i, H_i, W_i)`` -> ``num_outs`` maps
    ``(B, out_channels, H_l, W_l)`` (sizes must halve exactly: pad to a multiple of ``2**num_outs``).
    """

    transition_types = {'conv': ConvModule, 'interpolation_conv': UpInterpolationConv, 'last_conv': LastConv,
                        'identity': Identity}

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 stack_times: int,
                 paths: Sequence[str],
                 inter_channels=None,
                 same_down_trans: Optional[dict] = None,
                 same_up_trans: Optional[dict] = dict(type='conv', kernel_size=3, stride=2, padding=1),
                 across_lateral_trans: Optional[dict] = dict(type='conv', kernel_size=1),
                 across_down_trans: Optional[dict] = dict(type='conv', kernel_size=3),
                 across_up_trans: Optional[dict] = None,
                 across_skip_trans: Optional[dict] = dict(type='identity'),
                 output_trans: dict = dict(type='last_conv', kernel_size=3),
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: bool = False,
                 norm_cfg=None,
                 skip_inds=None,
                 init_cfg=[dict(type='Caffe2Xavier', layer='Conv2d'),
                           dict(type='Constant', layer=['_BatchNorm', '_InstanceNorm', 'GroupNorm', 'LayerNorm'],
                                val=1.0)]):
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        if inter_channels is None:
            inter_channels = out_channels
        self.inter_channels = [inter_channels] * num_outs if isinstance(inter_channels, int) else list(inter_channels)
        if len(self.inter_channels) != num_outs:
            raise ValueError(f'FPG: inter_channels needs one entry per output level ({num_outs}), '
                             f'got {len(self.inter_channels)}')
        if len(paths) != stack_times or any(p not in ('bu', 'td') for p in paths):
            raise ValueError(f"FPG: paths must list 'bu' or 'td' for each of the {stack_times} stacks, got {paths!r}")
        self.stack_times = stack_times
        self.paths = list(paths)
        self.same_down_trans, self.same_up_trans = same_down_trans, same_up_trans
        self.across_lateral_trans, self.across_down_trans = across_lateral_trans, across_down_trans
        self.across_up_trans, self.across_skip_trans = across_up_trans, across_skip_trans
        self.output_trans = output_trans
        self.with_bias = norm_cfg is None
        self.skip_inds = [tuple(s) for s in skip_inds] if skip_inds is not None else [()] * num_outs
        if len(self.skip_inds) != num_outs:
            raise ValueError(f'FPG: skip_inds needs one tuple per output level ({num_outs}), got {len(self.skip_inds)}')
        if end_level in (-1, self.num_ins - 1):
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ValueError(f'FPG: num_outs={num_outs} is less than the {self.num_ins - start_level} inputs used')
        else:
            if not start_level <= end_level < self.num_ins or num_outs != end_level - start_level + 1:
                raise ValueError(f'FPG: with end_level={end_level}, num_outs must be end_level - start_level + 1')
            self.backbone_end_level = end_level + 1
        self.start_level, self.end_level = start_level, end_level
        self.add_extra_convs = add_extra_convs

        ch = self.inter_channels
        self.lateral_convs = nn.ModuleList(nn.Conv2d(self.in_channels[i], ch[i - start_level], 1)
                                           for i in range(start_level, self.backbone_end_level))
        used = self.backbone_end_level - start_level
        self.extra_downsamples = nn.ModuleList(
            nn.Conv2d(ch[used + i - 1], ch[used + i], 3, stride=2, padding=1) if add_extra_convs
            else nn.MaxPool2d(1, stride=2) for i in range(num_outs - used))

        self.fpn_transitions = nn.ModuleList()
        for s in range(stack_times):
            stage = nn.ModuleList()
            for i in range(num_outs):
                trans = nn.ModuleDict()
                if s not in self.skip_inds[i]:
                    # Every key is present (None where the transition does not exist), as MMDetection.
                    trans['same_up'] = self._trans(same_up_trans if i > 0 else None, ch[i - 1], ch[i])
                    trans['same_down'] = self._trans(same_down_trans if i < num_outs - 1 else None,
                                                     ch[min(i + 1, num_outs - 1)], ch[i])
                    trans['across_lateral'] = self._trans(across_lateral_trans, ch[i], ch[i])
                    trans['across_down'] = self._trans(across_down_trans if i < num_outs - 1 else None,
                                                       ch[min(i + 1, num_outs - 1)], ch[i])
                    trans['across_up'] = self._trans(across_up_trans if i > 0 else None, ch[i - 1], ch[i])
                    trans['across_skip'] = self._trans(across_skip_trans, ch[i - 1], ch[i])
                stage.append(trans)
            self.fpn_transitions.append(stage)
        self.output_transition = nn.ModuleList(
            self._trans(output_trans, ch[i], out_channels, num_inputs=stack_times + 1) for i in range(num_outs))
        self.relu = nn.ReLU(inplace=True)

    def _trans(self, cfg: Optional[dict], in_ch: int, out_ch: int, **extra) -> Optional[nn.Module]:
        if cfg is None:
            return None
        cfg = dict(cfg)
        kind = cfg.pop('type')
        if kind not in self.transition_types:
            raise KeyError(f'FPG: transition type {kind!r} is not one of {sorted(self.transition_types)}')
        return self.transition_types[kind](in_ch, out_ch, **cfg, **extra)

    def forward(self, inputs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'FPG was built for {self.num_ins} input levels, got {len(inputs)}')
        feats = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for down in self.extra_downsamples:
            feats.append(down(feats[-1]))
        columns = [feats]
        for s, direction in enumerate(self.paths):
            prev = columns[-1]
            new: List[torch.Tensor] = []
            for j in range(self.num_outs):
                # td walks the levels coarsest first; ``new`` is then in walking order.
                lvl = self.num_outs - j - 1 if direction == 'td' else j
                if s in self.skip_inds[j]:  # indexed by walking order, as MMDetection (same for 'bu')
                    new.append(prev[j])
                    continue
                t = self.fpn_transitions[s][lvl]
                same = t['same_down'] if direction == 'td' else t['same_up']
                parts = []
                if same is not None:
                    parts.append(same(new[-1]))
                if t['across_lateral'] is not None:
                    parts.append(t['across_lateral'](prev[lvl]))
                if lvl > 0 and t['across_up'] is not None:
                    parts.append(t['across_up'](prev[lvl - 1]))
                if lvl < self.num_outs - 1 and t['across_down'] is not None:
                    parts.append(t['across_down'](prev[lvl + 1]))
                if t['across_skip'] is not None:
                    parts.append(t['across_skip'](columns[0][lvl]))
                new.append(sum(parts[1:], parts[0]))
            columns.append(new[::-1] if direction == 'td' else new)
        return [self.output_transition[i]([col[i] for col in columns]) for i in range(self.num_outs)]

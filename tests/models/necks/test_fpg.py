"""FPG: MMDetection's key layout for the zoo configs, output sizes, and one grid computed by hand."""
import json
import os
import os.path as osp

import pytest
import torch

from rcnn_plugins.models.necks import FPG
from rcnn_plugins.registry import MODELS
from repo_paths import REPO_ROOT

ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR') or osp.join(
    REPO_ROOT, '..', 'shared', 'mmdet_zoo'), 'keys')
BN = dict(type='BN', requires_grad=True)


def zoo_neck(inter_channels=256):
    """The neck of MMDetection's fpg/faster-rcnn_r50_fpg_crop640-50e_coco.py (chn128: 128 channels)."""
    conv = dict(norm_cfg=BN, inplace=False, order=('act', 'conv', 'norm'))
    return dict(
        type='FPG', in_channels=[256, 512, 1024, 2048], out_channels=inter_channels, inter_channels=inter_channels,
        num_outs=5, stack_times=9, paths=['bu'] * 9, same_down_trans=None,
        same_up_trans=dict(type='conv', kernel_size=3, stride=2, padding=1, **conv),
        across_lateral_trans=dict(type='conv', kernel_size=1, **conv),
        across_down_trans=dict(type='interpolation_conv', mode='nearest', kernel_size=3, **conv),
        across_up_trans=None,
        across_skip_trans=dict(type='conv', kernel_size=1, **conv),
        output_trans=dict(type='last_conv', kernel_size=3, order=('act', 'conv', 'norm'), inplace=False),
        norm_cfg=BN, skip_inds=[(0, 1, 2, 3), (0, 1, 2), (0, 1), (0,), ()])


@pytest.mark.parametrize('name, inter', [('faster-rcnn_r50_fpg_crop640-50e_coco', 256),
                                         ('faster-rcnn_r50_fpg-chn128_crop640-50e_coco', 128)])
def test_zoo_config_layout(name, inter):
    path = osp.join(ZOO, f'fpg__{name}.json')
    if not osp.isfile(path):
        pytest.skip(f'MMDetection zoo key list not found at {path}')
    with open(path) as f:
        ref = {k[len('neck.'):]: tuple(v) for k, v in json.load(f)['state_dict'].items() if k.startswith('neck.')}
    neck = MODELS.build(zoo_neck(inter))
    assert {k: tuple(v.shape) for k, v in neck.state_dict().items()} == ref


def test_output_sizes():
    cfg = zoo_neck(8)
    cfg.update(in_channels=[4, 8, 16, 32], out_channels=8, stack_times=3, paths=['bu'] * 3,
               skip_inds=[(0, 1), (0,), (), (), ()])
    neck = MODELS.build(cfg)
    neck.init_weights()
    neck.eval()  # BatchNorm on the 1x1 top level needs running statistics at batch size 1
    xs = [torch.randn(1, c, 64 // 2 ** (i + 2), 64 // 2 ** (i + 2)) for i, c in enumerate([4, 8, 16, 32])]
    outs = neck(xs)
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16 // 2 ** i, 16 // 2 ** i) for i in range(5)]


def _unit(module):
    """A 1-channel conv (inside a ConvModule or bare) that passes its input through."""
    conv = getattr(module, 'conv', module)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, conv.weight.shape[2] // 2, conv.weight.shape[3] // 2] = 1.0
        if conv.bias is not None:
            conv.bias.zero_()


def test_one_bottom_up_column_by_hand():
    # Two levels, one 'bu' column: defaults (same_up stride-2 conv, lateral 1x1, across_down 3x3 at
    # the coarser level's size, skip identity) with every conv a pass-through.
    neck = FPG([1, 1], 1, num_outs=2, stack_times=1, paths=['bu'],
               across_down_trans=dict(type='interpolation_conv', kernel_size=3, act_cfg=None),
               same_up_trans=dict(type='conv', kernel_size=3, stride=2, padding=1, act_cfg=None),
               across_lateral_trans=dict(type='conv', kernel_size=1, act_cfg=None),
               output_trans=dict(type='last_conv', kernel_size=3, act_cfg=None))
    for m in neck.modules():
        if isinstance(m, torch.nn.Conv2d):
            _unit(m)
    x0 = torch.arange(16.).view(1, 1, 4, 4)
    x1 = torch.tensor([[1., 2.], [3., 4.]]).view(1, 1, 2, 2)
    with torch.no_grad():
        y0, y1 = neck([x0, x1])
    up = x1[0, 0].repeat_interleave(2, 0).repeat_interleave(2, 1)
    # level 0: lateral x0 + across_down (x1 upsampled) + skip x0
    expected0 = x0[0, 0] + up + x0[0, 0]
    assert torch.equal(y0[0, 0], expected0)
    # level 1: same_up (level 0 of this column, subsampled) + lateral x1 + skip x1
    assert torch.equal(y1[0, 0], expected0[::2, ::2] + 2 * x1[0, 0])

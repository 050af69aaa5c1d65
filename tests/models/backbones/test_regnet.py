"""RegNet against torchvision's RegNetX (same widths, groups, depths; same outputs with mapped keys),
MMDetection's layout for the zoo config, and freezing."""
import json
import os
import os.path as osp

import pytest
import torch
from torchvision.models import regnet as tv_regnet

from rcnn_plugins.models.backbones.regnet import RegNet, regnet_stages
from rcnn_plugins.registry import MODELS
from repo_paths import REPO_ROOT

# MMDetection's key lists: <repo>/../shared/mmdet_zoo, or the folder named by MMDET_ZOO_DIR.
ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR') or osp.join(
    REPO_ROOT, '..', 'shared', 'mmdet_zoo'), 'keys')
# torchvision builder of the same network (BlockParams.from_init_params with the same w0, wa, wm, depth, group_w).
TV = {'regnetx_400mf': tv_regnet.regnet_x_400mf, 'regnetx_800mf': tv_regnet.regnet_x_800mf,
      'regnetx_1.6gf': tv_regnet.regnet_x_1_6gf, 'regnetx_3.2gf': tv_regnet.regnet_x_3_2gf,
      'regnetx_8.0gf': tv_regnet.regnet_x_8gf}


def _tv_params(arch):
    s = RegNet.arch_settings[arch]
    return tv_regnet.BlockParams.from_init_params(depth=s['depth'], w_0=s['w0'], w_a=s['wa'], w_m=s['wm'],
                                                  group_width=s['group_w'])


@pytest.mark.parametrize('arch', sorted(TV))
def test_stages_equal_torchvision(arch):
    widths, blocks, groups = regnet_stages(RegNet.arch_settings[arch])
    p = _tv_params(arch)
    tv_widths = list(p.widths)
    if arch == 'regnetx_400mf':
        # The one place they part: the last stage's 392 channels made a multiple of 16. pycls and
        # MMDetection round 24.5 half-to-even (384, the width of MMDetection's checkpoints);
        # torchvision's _make_divisible rounds up (400).
        assert widths[3] == 384 and tv_widths[3] == 400
        tv_widths[3] = 384
    assert widths == tv_widths and blocks == list(p.depths)
    assert [w // g for w, g in zip(widths, groups)] == list(p.group_widths)


def test_regnetx_3_2gf_paper_widths():
    # RegNet paper's quantised linear rule by hand for RegNetX-3.2GF (w0=88, wa=26.31, wm=2.25, d=25):
    # u_j = 88 + 26.31 j; s_j = round(log(u_j/88)/log 2.25); w = 8 * round(88 * 2.25**s_j / 8).
    # j=0,1 -> s=0 (w 88 -> group width 48 makes it 96); j=2..7 -> s=1 (198 -> 200 -> 192);
    # j=8..22 -> s=2 (445.5 -> 448 -> 432); j=23,24 -> s=3 (1002.4 -> 1000 -> 1008).
    assert regnet_stages(RegNet.arch_settings['regnetx_3.2gf']) == ([96, 192, 432, 1008], [2, 6, 15, 2],
                                                                     [2, 4, 9, 21])


def _map_to_torchvision(key):
    """Our key -> torchvision RegNet key."""
    if key.startswith(('conv1.', 'bn1.')):
        return key.replace('conv1.', 'stem.0.').replace('bn1.', 'stem.1.')
    parts = key.split('.')
    stage, block, rest = int(parts[0][5:]), int(parts[1]), parts[2:]
    prefix = f'trunk_output.block{stage}.block{stage}-{block}.'
    table = {'conv1': 'f.a.0', 'bn1': 'f.a.1', 'conv2': 'f.b.0', 'bn2': 'f.b.1', 'conv3': 'f.c.0', 'bn3': 'f.c.1'}
    if rest[0] == 'downsample':
        return prefix + 'proj.' + rest[1] + '.' + '.'.join(rest[2:])
    return prefix + table[rest[0]] + '.' + '.'.join(rest[1:])


def test_same_outputs_as_torchvision_regnet_x_800mf():
    torch.manual_seed(0)
    tv = TV['regnetx_800mf']().eval()
    for m in tv.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    ours = RegNet('regnetx_800mf').eval()
    tv_sd = tv.state_dict()
    ours.load_state_dict({k: tv_sd[_map_to_torchvision(k)] for k in ours.state_dict()})
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = ours(x)
        y = tv.stem(x)
        ref = []
        for stage in tv.trunk_output:
            y = stage(y)
            ref.append(y)
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in
                                              zip([64, 128, 288, 672], (4, 8, 16, 32))]
    for a, b in zip(outs, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_zoo_config_layout():
    path = osp.join(ZOO, 'regnet__faster-rcnn_regnetx-3.2GF_fpn_1x_coco.json')
    if not osp.isfile(path):
        pytest.skip(f'MMDetection zoo key list not found at {path}')
    with open(path) as f:
        ref = {k[len('backbone.'):]: tuple(v) for k, v in json.load(f)['state_dict'].items()
               if k.startswith('backbone.')}
    model = MODELS.build(dict(type='RegNet', arch='regnetx_3.2gf', out_indices=(0, 1, 2, 3), frozen_stages=1,
                              norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch'))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ref
    assert model.out_channels == [96, 192, 432, 1008]


def test_freezing_and_zero_init():
    model = RegNet('regnetx_400mf', frozen_stages=1, out_indices=(1, 3))
    model.init_weights()
    model.train()
    assert not model.conv1.weight.requires_grad and not model.layer1[0].conv2.weight.requires_grad
    assert model.layer2[0].conv2.weight.requires_grad and not model.layer2[0].bn1.training  # norm_eval
    assert torch.all(model.layer3[0].bn3.weight == 0)  # zero_init_residual
    assert model.out_channels == [64, 384]
    with pytest.raises(KeyError, match='regnetx_3.2gf'):
        RegNet('regnetx_3.2GF')
    with pytest.raises(NotImplementedError, match='dcn'):
        RegNet('regnetx_400mf', dcn=dict(type='DCN'))

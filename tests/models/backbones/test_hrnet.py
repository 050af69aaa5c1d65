"""HRNet: MMDetection's key layout for the zoo configs, output sizes and channels, and the
multi-resolution exchange of one module computed by hand."""
import json
import os
import os.path as osp

import pytest
import torch

from rcnn_plugins.models.backbones.hrnet_module import HRModule
from rcnn_plugins.models.backbones.resnet import BasicBlock
from rcnn_plugins.registry import MODELS
from repo_paths import REPO_ROOT

ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR') or osp.join(
    REPO_ROOT, '..', 'shared', 'mmdet_zoo'), 'keys')


def hrnet_extra(w, blocks=4, modules=(1, 1, 4, 3)):
    """MMDetection's HRNetV2p-W<w> ``extra`` (w=18, 32, 40), with block and module counts to shrink."""
    def stage(i, block, n):
        return dict(num_modules=modules[i - 1], num_branches=n, block=block, num_blocks=(blocks,) * n,
                    num_channels=(64,) if i == 1 else tuple(w * 2 ** b for b in range(n)))
    return dict(stage1=stage(1, 'BOTTLENECK', 1), stage2=stage(2, 'BASIC', 2), stage3=stage(3, 'BASIC', 3),
                stage4=stage(4, 'BASIC', 4))


@pytest.mark.parametrize('w', [18, 32])
def test_zoo_config_layout(w):
    path = osp.join(ZOO, f'hrnet__faster-rcnn_hrnetv2p-w{w}-1x_coco.json')
    if not osp.isfile(path):
        pytest.skip(f'MMDetection zoo key list not found at {path}')
    with open(path) as f:
        ref = {k: tuple(v) for k, v in json.load(f)['state_dict'].items() if k.startswith(('backbone.', 'neck.'))}
    backbone = MODELS.build(dict(type='HRNet', extra=hrnet_extra(w)))
    neck = MODELS.build(dict(type='HRFPN', in_channels=backbone.out_channels, out_channels=256))
    ours = {f'backbone.{k}': tuple(v.shape) for k, v in backbone.state_dict().items()}
    ours.update({f'neck.{k}': tuple(v.shape) for k, v in neck.state_dict().items()})
    assert ours == ref


def test_output_sizes_and_channels():
    model = MODELS.build(dict(type='HRNet', extra=hrnet_extra(4, blocks=1, modules=(1, 1, 1, 1))))
    model.init_weights()
    assert model.out_channels == [4, 8, 16, 32]
    assert model.layer1[0].conv3.out_channels == 256  # stage 1: Bottleneck, 64 * 4
    model.train()
    assert not model.bn1.training  # norm_eval
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 4 * 2 ** b, 64 // 2 ** (b + 2), 96 // 2 ** (b + 2))
                                              for b in range(4)]
    single = MODELS.build(dict(type='HRNet', extra=hrnet_extra(4, blocks=1, modules=(1, 1, 1, 1)),
                               multiscale_output=False))
    assert len(single.stage4[-1].fuse_layers) == 1


def _set_identity_conv(conv):
    with torch.no_grad():
        conv.weight.zero_()
        k = conv.weight.shape[-1] // 2
        for c in range(min(conv.weight.shape[:2])):
            conv.weight[c, c, k, k] = 1.0


def test_exchange_by_hand():
    module = HRModule(2, BasicBlock, (1, 1), [1, 1], (1, 1)).eval()
    with torch.no_grad():
        for branch in module.branches:  # residual branch off: a block is relu(x)
            branch[0].bn2.weight.zero_()
            branch[0].bn2.bias.zero_()
        _set_identity_conv(module.fuse_layers[0][1][0])  # 1x1, then nearest x2
        _set_identity_conv(module.fuse_layers[1][0][0][0])  # stride-2 3x3 centre tap: subsampling
    x0 = torch.arange(16.).view(1, 1, 4, 4)
    x1 = torch.tensor([[1., 2.], [3., 4.]]).view(1, 1, 2, 2)
    with torch.no_grad():
        y0, y1 = module([x0, x1])
    up = torch.tensor([[1., 1., 2., 2.], [1., 1., 2., 2.], [3., 3., 4., 4.], [3., 3., 4., 4.]])
    # BN in eval with running stats (0, 1) divides by sqrt(1 + 1e-5).
    s = 1 / (1 + 1e-5) ** 0.5
    torch.testing.assert_close(y0[0, 0], x0[0, 0] + s * up)
    torch.testing.assert_close(y1[0, 0], x1[0, 0] + s * torch.tensor([[0., 2.], [8., 10.]]))


def test_bad_extra():
    extra = hrnet_extra(4, blocks=1)
    extra['stage3']['num_channels'] = (4, 8)
    with pytest.raises(ValueError, match='stage3'):
        MODELS.build(dict(type='HRNet', extra=extra))
    with pytest.raises(KeyError, match='stage4'):
        MODELS.build(dict(type='HRNet', extra={k: v for k, v in hrnet_extra(4).items() if k != 'stage4'}))

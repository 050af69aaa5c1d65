"""Res2Net: shapes per level and one block against a slow reference written here from the paper."""
import torch
import torch.nn.functional as F

from rcnn_plugins.models.backbones import Res2Net
from rcnn_plugins.models.backbones.res2net import Bottle2neck


def test_output_channels_and_strides():
    m = Res2Net(depth=50, scales=4, base_width=26).eval()
    outs = m(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 4, 4), (1, 2048, 2, 2)]
    assert hasattr(m, 'stem')  # v1d stem
    # width = floor(planes * 26 / 64): 26, 52, 104, 208 per group; scales - 1 = 3 convs per block.
    assert [m.layer1[0].width, m.layer2[0].width, m.layer3[0].width, m.layer4[0].width] == [26, 52, 104, 208]
    assert len(m.layer1[0].convs) == 3 and m.layer1[0].conv1.out_channels == 104


def _bn(bn, x):
    return (x - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps) \
        * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]


@torch.no_grad()
def _reference(block, x, stage):
    """y1 = K1(x1); yi = Ki(xi + y(i-1)) ('normal') or Ki(xi) ('stage'); last group passed/pooled."""
    out = F.relu(_bn(block.bn1, block.conv1(x)))
    w = block.width
    groups = [out[:, i * w:(i + 1) * w] for i in range(block.scales)]
    ys = []
    for i in range(block.scales - 1):
        inp = groups[i] if (i == 0 or stage) else groups[i] + ys[-1]
        ys.append(F.relu(_bn(block.bns[i], F.conv2d(inp, block.convs[i].weight, stride=block.conv2_stride,
                                                     padding=1))))
    last = groups[-1]
    if stage and block.conv2_stride != 1:
        last = F.avg_pool2d(last, 3, block.conv2_stride, 1)
    out = _bn(block.bn3, block.conv3(torch.cat(ys + [last], 1)))
    identity = x if block.downsample is None else block.downsample(x)
    return F.relu(out + identity)


def test_block_matches_reference():
    torch.manual_seed(0)
    for stage, stride in (('normal', 1), ('stage', 2)):
        down = None if stage == 'normal' else torch.nn.Sequential(
            torch.nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
            torch.nn.Conv2d(64, 256, 1, bias=False), torch.nn.BatchNorm2d(256))
        inplanes = 256 if stage == 'normal' else 64
        block = Bottle2neck(inplanes, 64, scales=4, base_width=26, stage_type=stage, stride=stride,
                            downsample=down).eval()
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
        x = torch.randn(2, inplanes, 12, 12)
        torch.testing.assert_close(block(x), _reference(block, x, stage == 'stage'), atol=1e-5, rtol=1e-5)

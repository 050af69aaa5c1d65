"""ResNeSt: shapes per level, keys, and split attention against a per-split loop written here."""
import torch
import torch.nn.functional as F

from rcnn_plugins.models.backbones import ResNeSt
from rcnn_plugins.models.layers.split_attention_conv import SplitAttentionConv2d


def test_output_channels_strides_and_avd():
    m = ResNeSt(depth=50, stem_channels=64, radix=2, reduction_factor=4).eval()
    outs = m(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 4, 4), (1, 2048, 2, 2)]
    # Strided blocks stride by the 3x3 average pool after the split-attention conv.
    assert m.layer2[0].conv2.conv.stride == (1, 1) and m.layer2[0].avd_layer.stride == 2
    assert not hasattr(m.layer1[0], 'avd_layer')
    keys = m.state_dict()
    assert keys['layer1.0.conv2.conv.weight'].shape == (128, 32, 3, 3)  # 64 * radix out, groups = radix
    assert keys['layer1.0.conv2.fc1.weight'].shape == (32, 64, 1, 1)  # max(64 * 2 // 4, 32)


@torch.no_grad()
def test_split_attention_matches_loop():
    torch.manual_seed(0)
    radix, groups, c = 2, 2, 8
    sac = SplitAttentionConv2d(8, c, 3, padding=1, groups=groups, radix=radix, reduction_factor=4).eval()
    for bn in (sac.norm0, sac.norm1):
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 8, 6, 6)
    y = F.relu(sac.norm0(sac.conv(x)))                   # (B, radix * c, H, W), split r = channels r*c..
    splits = [y[:, r * c:(r + 1) * c] for r in range(radix)]
    gap = sum(splits).mean(dim=(2, 3), keepdim=True)
    logits = sac.fc2(F.relu(sac.norm1(sac.fc1(gap))))  # (B, radix * c, 1, 1), grouped by cardinal group
    per = c // groups
    out = torch.zeros_like(splits[0])
    for g in range(groups):                              # softmax over radix within each cardinal group
        # fc2's groups output group-major: group g holds radix * per channels, radix-major inside.
        lg = torch.stack([logits[:, g * radix * per + r * per:g * radix * per + (r + 1) * per] for r in range(radix)])
        att = torch.softmax(lg, dim=0)
        for r in range(radix):
            out[:, g * per:(g + 1) * per] += att[r] * splits[r][:, g * per:(g + 1) * per]
    torch.testing.assert_close(sac(x), out, atol=1e-5, rtol=1e-5)

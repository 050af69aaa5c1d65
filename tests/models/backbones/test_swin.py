"""SwinTransformer: MMDetection's key layout (zoo config), window attention against the formula,
the shifted-window mask against region independence, the official-checkpoint converter against
the official patch merging, and offline pretrained weights."""
import json
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn

from rcnn_plugins.models.backbones.swin import SwinTransformer, swin_converter
from rcnn_plugins.models.backbones.swin_blocks import PatchMerging, ShiftWindowMSA, WindowMSA
from rcnn_plugins.registry import MODELS
from repo_paths import REPO_ROOT

ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR') or osp.join(
    REPO_ROOT, '..', 'shared', 'mmdet_zoo'), 'keys')


def test_zoo_config_layout():
    path = osp.join(ZOO, 'v3det__faster_rcnn_swinb_fpn_8x4_sample1e-3_mstrain_v3det_2x.json')
    if not osp.isfile(path):
        pytest.skip(f'MMDetection zoo key list not found at {path}')
    with open(path) as f:
        ref = {k[len('backbone.'):]: tuple(v) for k, v in json.load(f)['state_dict'].items()
               if k.startswith('backbone.')}
    model = MODELS.build(dict(type='SwinTransformer', embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                              window_size=7, mlp_ratio=4, drop_path_rate=0.3, convert_weights=True))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ref
    assert model.out_channels == [128, 256, 512, 1024]


def test_output_shapes_tiny():
    model = SwinTransformer(embed_dims=8, depths=(2, 2), num_heads=(1, 2), strides=(4, 2), window_size=3,
                            out_indices=(0, 1))
    model.init_weights()
    outs = model.eval()(torch.randn(2, 3, 50, 70))  # 13x18 tokens: padded to whole windows inside
    assert [tuple(o.shape) for o in outs] == [(2, 8, 13, 18), (2, 16, 7, 9)]


def test_window_attention_formula():
    torch.manual_seed(0)
    msa = WindowMSA(embed_dims=4, num_heads=1, window_size=2)
    nn.init.normal_(msa.relative_position_bias_table)
    x = torch.randn(1, 4, 4)  # one 2x2 window
    q, k, v = msa.qkv(x).chunk(3, dim=-1)
    # bias[i, j] for the offset (dy, dx) = pos_i - pos_j, table row (dy + 1) * 3 + (dx + 1)
    pos = [(0, 0), (0, 1), (1, 0), (1, 1)]
    bias = torch.tensor([[msa.relative_position_bias_table[(a[0] - b[0] + 1) * 3 + a[1] - b[1] + 1, 0].item()
                          for b in pos] for a in pos])
    attn = torch.softmax(q @ k.transpose(1, 2) / 2.0 + bias, dim=-1)  # scale = 4 ** -0.5
    torch.testing.assert_close(msa(x), msa.proj(attn @ v))


def test_shifted_windows_keep_regions_apart():
    # One 4x4 window over a 4x4 map, shifted by 2: the roll brings four 2x2 corner regions together;
    # a token must not see tokens of another region (so changing them leaves it unchanged).
    torch.manual_seed(0)
    msa = ShiftWindowMSA(embed_dims=4, num_heads=1, window_size=4, shift_size=2).eval()
    x = torch.randn(1, 16, 4)
    y = msa(x, (4, 4))
    x2 = x.clone().view(1, 4, 4, 4)
    x2[:, 2:, 2:] += 5.0  # the bottom-right region of the original map
    y2 = msa(x2.view(1, 16, 4), (4, 4)).view(1, 4, 4, 4)
    y = y.view(1, 4, 4, 4)
    torch.testing.assert_close(y2[:, :2, :], y[:, :2, :])  # top regions unchanged
    torch.testing.assert_close(y2[:, 2:, :2], y[:, 2:, :2])  # bottom-left unchanged
    assert not torch.allclose(y2[:, 2:, 2:], y[:, 2:, 2:])
    # without the shift, the whole window attends together: every token changes
    plain = ShiftWindowMSA(embed_dims=4, num_heads=1, window_size=4, shift_size=0).eval()
    plain.load_state_dict(msa.state_dict())
    assert not torch.allclose(plain(x2.view(1, 16, 4), (4, 4))[:, :2], plain(x, (4, 4))[:, :2])


def test_converter_matches_official_patch_merging():
    torch.manual_seed(0)
    c = 3
    norm, linear = nn.LayerNorm(4 * c), nn.Linear(4 * c, 2 * c, bias=False)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(1, 4, 6, c)  # (B, H, W, C)
    # The official Swin patch merging: cat of the (0,0), (1,0), (0,1), (1,1) neighbours.
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    official = linear(norm(cat.view(1, -1, 4 * c)))
    sd = swin_converter({'layers.0.downsample.norm.weight': norm.weight.data,
                         'layers.0.downsample.norm.bias': norm.bias.data,
                         'layers.0.downsample.reduction.weight': linear.weight.data,
                         'layers.0.blocks.0.mlp.fc1.weight': torch.zeros(1), 'head.weight': torch.zeros(1),
                         'patch_embed.proj.weight': torch.zeros(1)})
    assert {'backbone.stages.0.blocks.0.ffn.layers.0.0.weight', 'backbone.patch_embed.projection.weight'} < set(sd)
    assert not any('head' in k for k in sd)
    ours = PatchMerging(c, 2 * c)
    ours.load_state_dict({k.split('downsample.')[1]: v for k, v in sd.items() if 'downsample' in k})
    out, hw = ours(x.view(1, -1, c), (4, 6))
    assert hw == (2, 3)
    torch.testing.assert_close(out, official)


def test_pretrained_url_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    url = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'
    model = SwinTransformer(embed_dims=8, depths=(1, 1), num_heads=(1, 1), strides=(4, 2), window_size=3,
                            out_indices=(0, 1), convert_weights=True, init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'checkpoints' / 'swin_tiny_patch4_window7_224.pth')):
        model.init_weights()
    # The same file in the cache (official layout) loads, converted.
    official = {swin_key: v for swin_key, v in [
        ('patch_embed.proj.weight', torch.full((8, 3, 4, 4), 0.5)), ('layers.0.blocks.0.mlp.fc1.bias', torch.ones(32))]}
    os.makedirs(tmp_path / 'checkpoints')
    torch.save({'model': official}, tmp_path / 'checkpoints' / 'swin_tiny_patch4_window7_224.pth')
    model.init_weights()
    assert torch.all(model.patch_embed.projection.weight == 0.5)
    assert torch.all(model.stages[0].blocks[0].ffn.layers[0][0].bias == 1)

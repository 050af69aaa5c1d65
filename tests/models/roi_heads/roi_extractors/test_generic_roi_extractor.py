"""GRoIE: every RoI pooled from every level (torchvision roi_align per level), pre-module per level,
sum or concat, post-module (mmcv's ConvModule / GeneralizedAttention)."""
import pytest
import torch
from torchvision.ops import roi_align

from rcnn_plugins.models.roi_heads import GenericRoIExtractor

STRIDES = [4, 8, 16, 32]


def feats():
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, 8, 128 // s, 128 // s, generator=g) for s in STRIDES)


ROIS = torch.tensor([[0., 5., 5., 40., 50.], [1., 10., 20., 120., 110.], [1., 0., 0., 16., 16.]])


@torch.no_grad()
def test_sum_with_pre_and_post_modules_by_hand():
    ext = GenericRoIExtractor(
        aggregation='sum', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2), out_channels=8,
        featmap_strides=STRIDES,
        pre_cfg=dict(type='ConvModule', in_channels=8, out_channels=8, kernel_size=5, padding=2, inplace=False),
        post_cfg=dict(type='GeneralizedAttention', in_channels=8, spatial_range=-1, num_heads=2,
                      attention_type='0100', kv_stride=2)).eval()
    x = feats()
    out = ext(x, ROIS)
    total = sum(ext.pre_module(roi_align(f, ROIS, 7, 1 / s, 2, True)) for f, s in zip(x, STRIDES))
    assert torch.allclose(out, ext.post_module(total), atol=1e-5)
    assert {'pre_module.conv.weight', 'post_module.query_conv.weight', 'post_module.gamma'} <= set(ext.state_dict())


@torch.no_grad()
def test_concat_and_plain_sum():
    x = feats()
    ext = GenericRoIExtractor(aggregation='concat', roi_layer=dict(type='RoIAlign', output_size=5, sampling_ratio=1),
                              out_channels=32, featmap_strides=STRIDES)
    out = ext(x, ROIS)
    ref = torch.cat([roi_align(f, ROIS, 5, 1 / s, 1, True) for f, s in zip(x, STRIDES)], dim=1)
    assert torch.allclose(out, ref, atol=1e-6)
    ext = GenericRoIExtractor(roi_layer=dict(type='RoIAlign', output_size=5, sampling_ratio=1), out_channels=8,
                              featmap_strides=STRIDES)
    assert torch.allclose(ext(x, ROIS), ref.view(3, 4, 8, 5, 5).sum(1), atol=1e-5)
    with pytest.raises(ValueError, match='aggregation'):
        GenericRoIExtractor(aggregation='max', roi_layer=dict(type='RoIAlign', output_size=5), out_channels=8,
                            featmap_strides=STRIDES)

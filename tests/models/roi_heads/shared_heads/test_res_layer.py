"""ResLayer (the C4 shared head) equals ResNet's stage 4 run directly on the RoI-aligned crops:
torchvision's ResNet-50 layer4 (pytorch style) and our ResNet's layer4 (caffe style)."""
import torch
import torchvision
from torchvision.ops import roi_align

from rcnn_plugins.models.backbones import ResNet
from rcnn_plugins.models.roi_heads import BBoxHead, ResLayer, StandardRoIHead

CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])


def randomise_bn(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if getattr(m, 'running_mean', None) is not None:  # BatchNorm2d and FrozenBatchNorm2d
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@torch.no_grad()
def test_c4_head_equals_torchvision_stage4_on_crops():
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None).eval()
    randomise_bn(tv.layer4)
    shared = ResLayer(depth=50, stage=3, stride=2, style='pytorch', norm_eval=True)
    missing = shared.load_state_dict({f'layer4.{k}': v for k, v in tv.layer4.state_dict().items()})
    assert not missing.missing_keys and not missing.unexpected_keys  # same keys as a ResNet checkpoint
    shared.train()  # norm_eval keeps BN in eval mode while training
    head = StandardRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=1024, featmap_strides=[16],
                                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)),
        bbox_head=BBoxHead(with_avg_pool=True, roi_feat_size=7, in_channels=2048, num_classes=3, bbox_coder=CODER),
        shared_head=shared)
    c4 = torch.randn(1, 1024, 8, 10)  # stride 16: a 128 x 160 image
    rois = torch.tensor([[0., 4., 8., 60., 70.], [0., 50., 10., 150., 120.], [0., 0., 0., 127., 159.]])
    cls, reg = head._bbox_forward((c4,), rois)
    crops = roi_align(c4, rois, (14, 14), spatial_scale=1 / 16, sampling_ratio=0, aligned=True)
    out = tv.layer4(crops)  # (3, 2048, 7, 7)
    assert out.shape == (3, 2048, 7, 7)
    pooled = out.mean(dim=(2, 3))
    fc_cls, fc_reg = head.bbox_head.fc_cls, head.bbox_head.fc_reg
    assert torch.allclose(cls, pooled @ fc_cls.weight.T + fc_cls.bias, atol=1e-4)
    assert torch.allclose(reg, pooled @ fc_reg.weight.T + fc_reg.bias, atol=1e-4)


@torch.no_grad()
def test_caffe_style_res_layer_equals_resnet_stage4_frozen_bn():
    norm_cfg = dict(type='BN', requires_grad=False)
    backbone = ResNet(depth=50, num_stages=4, style='caffe', norm_cfg=norm_cfg, norm_eval=True, init_cfg=None).eval()
    randomise_bn(backbone.layer4, seed=1)
    shared = ResLayer(depth=50, stage=3, stride=2, style='caffe', norm_cfg=norm_cfg, norm_eval=True)
    shared.load_state_dict({f'layer4.{k}': v for k, v in backbone.layer4.state_dict().items()})
    # caffe style: the stride sits on the first 1x1 conv of the first block.
    assert shared.layer4[0].conv1.stride == (2, 2) and shared.layer4[0].conv2.stride == (1, 1)
    assert not any(p.requires_grad for n, p in shared.named_parameters() if 'bn' in n)
    crops = torch.randn(2, 1024, 14, 14)
    assert torch.allclose(shared.train()(crops), backbone.layer4(crops), atol=1e-5)

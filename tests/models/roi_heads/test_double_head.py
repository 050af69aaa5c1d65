"""Double-Head R-CNN: the classifier reads the RoI's features through fcs, the regressor reads the
1.3x enlarged RoI's features (pooled from the level of the RoI's own size) through convs."""
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from rcnn_plugins.models.roi_heads import DoubleConvFCBBoxHead, DoubleHeadRoIHead

CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])


def double_head(**kw):
    return DoubleConvFCBBoxHead(num_convs=2, num_fcs=2, in_channels=8, conv_out_channels=16, fc_out_channels=32,
                                roi_feat_size=7, num_classes=3, bbox_coder=CODER, **kw)


@torch.no_grad()
def test_branches_read_their_own_input():
    head = double_head().eval()
    x_cls, x_reg = torch.randn(4, 8, 7, 7), torch.randn(4, 8, 7, 7)
    cls, reg = head(x_cls, x_reg)
    assert cls.shape == (4, 4) and reg.shape == (4, 12)
    cls2, reg2 = head(x_cls, torch.randn(4, 8, 7, 7))
    assert torch.equal(cls, cls2) and not torch.allclose(reg, reg2)
    # Classification branch by hand: two fcs with ReLU, then fc_cls.
    h = x_cls.flatten(1)
    for fc in head.fc_branch:
        h = F.relu(fc(h))
    assert torch.allclose(cls, head.fc_cls(h), atol=1e-5)
    # Regression branch by hand: res block (3x3 + 1x1, 1x1 shortcut), bottlenecks, mean pool, fc_reg.
    rb = head.res_block
    y = F.relu(rb.conv2(rb.conv1(x_reg)) + rb.conv_identity(x_reg))
    for block in head.conv_branch:
        y = block(y)
    assert torch.allclose(reg, head.fc_reg(y.mean(dim=(2, 3))), atol=1e-5)


def test_layout_matches_mmdetection_names():
    keys = set(double_head().state_dict())
    assert {'res_block.conv1.conv.weight', 'res_block.conv1.bn.weight', 'res_block.conv_identity.conv.weight',
            'conv_branch.1.conv3.weight', 'conv_branch.1.bn3.running_var', 'fc_branch.0.weight',
            'fc_branch.1.bias', 'fc_cls.weight', 'fc_reg.weight'} <= keys
    assert not any(k.startswith(('shared_fcs', 'res_block.conv1.conv.bias')) for k in keys)


@torch.no_grad()
def test_roi_head_pools_enlarged_rois_for_regression():
    head = DoubleHeadRoIHead(
        reg_roi_scale_factor=1.3,
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8, featmap_strides=[4, 8],
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2)),
        bbox_head=double_head()).eval()
    feats = (torch.randn(1, 8, 64, 64), torch.randn(1, 8, 32, 32))
    # A 100 px RoI maps to level 0 (stride 4); enlarged to 130 px it would map to level 1 if the
    # level were chosen after scaling: MMDetection chooses it from the RoI's own size.
    rois = torch.tensor([[0., 50., 60., 150., 160.]])
    cls, reg = head._bbox_forward(feats, rois)
    big = torch.tensor([[0., 35., 45., 165., 175.]])  # same centre (100, 110), 130 x 130
    x_cls = roi_align(feats[0], rois, 7, 1 / 4, 2, True)
    x_reg = roi_align(feats[0], big, 7, 1 / 4, 2, True)
    ref_cls, ref_reg = head.bbox_head(x_cls, x_reg)
    assert torch.allclose(cls, ref_cls, atol=1e-5) and torch.allclose(reg, ref_reg, atol=1e-5)

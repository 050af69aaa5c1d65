"""BBoxHead options of MMDetection's configs: with_avg_pool, with_reg=False, cls_predictor_cfg, the
Shared4Conv1FC preset with GN, and ConvFCBBoxHead's dropout (PretrainedFCBBoxHead's forward is its parent's)."""
import torch
import torch.nn.functional as F

from rcnn_plugins.models.layers import NormedLinear
from rcnn_plugins.models.roi_heads.bbox_heads import (BBoxHead, ConvFCBBoxHead, PretrainedFCBBoxHead,
                                                      Shared2FCBBoxHead, Shared4Conv1FCBBoxHead)

CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])


def test_with_avg_pool_reads_the_channel_means():
    head = BBoxHead(with_avg_pool=True, roi_feat_size=7, in_channels=8, num_classes=3, bbox_coder=CODER)
    assert head.fc_cls.weight.shape == (4, 8) and head.fc_reg.weight.shape == (12, 8)
    x = torch.randn(5, 8, 7, 7)
    cls, reg = head(x)
    mean = x.mean(dim=(2, 3))
    assert torch.allclose(cls, mean @ head.fc_cls.weight.T + head.fc_cls.bias, atol=1e-5)
    assert torch.allclose(reg, mean @ head.fc_reg.weight.T + head.fc_reg.bias, atol=1e-5)
    # Without the pool the predictors read the flattened map.
    assert BBoxHead(in_channels=8, num_classes=3, bbox_coder=CODER).fc_cls.weight.shape == (4, 8 * 49)


def test_convfc_with_avg_pool_and_shared_fc():
    head = ConvFCBBoxHead(num_shared_convs=1, num_shared_fcs=1, with_avg_pool=True, in_channels=8,
                          conv_out_channels=6, fc_out_channels=10, num_classes=2, bbox_coder=CODER)
    assert head.shared_fcs[0].weight.shape == (10, 6)  # the pooled conv output, not 6 * 49
    x = torch.randn(3, 8, 7, 7)
    cls, _ = head(x)
    h = F.relu(head.shared_fcs[0](head.shared_convs[0](x).mean(dim=(2, 3))))
    assert torch.allclose(cls, head.fc_cls(h), atol=1e-5)


def test_with_reg_false_has_no_regressor_and_no_box_loss():
    head = Shared2FCBBoxHead(in_channels=4, fc_out_channels=16, num_classes=3, bbox_coder=CODER, with_reg=False)
    assert not any(k.startswith('fc_reg') for k in head.state_dict())
    cls, reg = head(torch.randn(6, 4, 7, 7))
    assert reg is None and cls.shape == (6, 4)
    labels = torch.tensor([0, 1, 3, 3, 2, 3])
    out = head.loss(cls, None, torch.zeros(6, 5), labels, torch.ones(6), torch.zeros(6, 4), torch.zeros(6, 4))
    assert set(out) == {'loss_cls', 'acc'}
    assert torch.allclose(out['loss_cls'], F.cross_entropy(cls, labels), atol=1e-6)


def test_normed_linear_is_a_scaled_cosine():
    layer = NormedLinear(5, 3, tempearture=20)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, 0., -1.]))
    x = torch.randn(4, 5)
    cos = F.cosine_similarity(x[:, None, :], layer.weight[None], dim=-1)
    # eps (1e-6) against norms of ~0.02 (Normal(0, 0.01) weights) moves the result by ~1e-4 relative.
    assert torch.allclose(layer(x), 20 * cos + layer.bias, rtol=1e-3, atol=1e-3)
    assert set(layer.state_dict()) == {'weight', 'bias'}


def test_cls_predictor_cfg_builds_normed_linear():
    head = Shared2FCBBoxHead(in_channels=4, fc_out_channels=16, num_classes=3, bbox_coder=CODER,
                             cls_predictor_cfg=dict(type='NormedLinear', tempearture=50, bias=True))
    assert isinstance(head.fc_cls, NormedLinear) and head.fc_cls.tempearture == 50
    assert head.fc_cls.weight.shape == (4, 16)
    assert type(head.fc_reg) is torch.nn.Linear


def test_shared4conv1fc_gn_layout():
    # MMDetection's gn+ws Faster R-CNN head layout (ConvModule names its GN 'gn'; no conv bias with a norm).
    head = Shared4Conv1FCBBoxHead(in_channels=256, conv_out_channels=256, num_classes=80, bbox_coder=CODER,
                                  norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    shapes = {k: list(v.shape) for k, v in head.state_dict().items()}
    expected = {'fc_cls.weight': [81, 1024], 'fc_cls.bias': [81], 'fc_reg.weight': [320, 1024],
                'fc_reg.bias': [320], 'shared_fcs.0.weight': [1024, 12544], 'shared_fcs.0.bias': [1024]}
    for i in range(4):
        expected.update({f'shared_convs.{i}.conv.weight': [256, 256, 3, 3], f'shared_convs.{i}.gn.weight': [256],
                         f'shared_convs.{i}.gn.bias': [256]})
    assert shapes == expected
    cls, reg = head(torch.randn(2, 256, 7, 7))
    assert cls.shape == (2, 81) and reg.shape == (2, 320)


def test_dropout_option_only_acts_in_training():
    torch.manual_seed(0)
    plain = Shared2FCBBoxHead(in_channels=4, fc_out_channels=64, num_classes=3, bbox_coder=CODER)
    drop = Shared2FCBBoxHead(in_channels=4, fc_out_channels=64, num_classes=3, bbox_coder=CODER, dropout=0.5)
    drop.load_state_dict(plain.state_dict())  # dropout adds no parameters
    x = torch.randn(8, 4, 7, 7)
    plain.eval(), drop.eval()
    assert torch.equal(drop(x)[0], plain(x)[0])
    drop.train()
    torch.manual_seed(1)
    out = drop(x)[0]
    # By hand: the same masks (same seed), scaled by 1 / (1 - p), after each fc's ReLU.
    torch.manual_seed(1)
    h = x.flatten(1)
    for fc in plain.shared_fcs:
        h = F.dropout(F.relu(fc(h)), 0.5, training=True)
    assert torch.allclose(out, plain.fc_cls(h), atol=1e-6)


def test_pretrained_fc_head_uses_the_parent_forward(tmp_path):
    assert 'forward' not in PretrainedFCBBoxHead.__dict__
    ckpt = tmp_path / 'fc.pth'
    torch.save({'classifier.0.weight': torch.randn(32, 4 * 49), 'classifier.0.bias': torch.randn(32),
                'classifier.3.weight': torch.randn(32, 32), 'classifier.3.bias': torch.randn(32)}, ckpt)
    head = PretrainedFCBBoxHead(fc_checkpoint=str(ckpt), in_channels=4, fc_out_channels=32, num_classes=3,
                                bbox_coder=CODER, dropout=0.5)
    head.init_weights()
    assert torch.equal(head.shared_fcs[1].bias, torch.load(ckpt)['classifier.3.bias'])
    assert isinstance(head.dropout, torch.nn.Dropout) and head.dropout.p == 0.5

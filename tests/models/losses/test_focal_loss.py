"""FocalLoss against torchvision.ops.sigmoid_focal_loss; label / weight forms; as the RPN's loss_cls."""
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from rcnn_plugins.models.losses import FocalLoss

EPS = torch.finfo(torch.float32).eps


def test_against_torchvision_onehot_and_index_labels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 5, generator=g) * 3
    labels = torch.randint(0, 6, (20,), generator=g)  # 5 = background
    onehot = torch.nn.functional.one_hot(labels, 6)[:, :5].float()
    expected = tv_focal(logits, onehot, alpha=0.25, gamma=2.0, reduction='none')
    torch.testing.assert_close(FocalLoss(reduction='none')(logits, labels), expected)
    torch.testing.assert_close(FocalLoss(reduction='none')(logits, onehot), expected)
    # Other alpha / gamma, mean and sum.
    fl = FocalLoss(alpha=0.5, gamma=1.0, loss_weight=2.0)
    torch.testing.assert_close(fl(logits, labels), 2.0 * tv_focal(logits, onehot, 0.5, 1.0, reduction='mean'))
    torch.testing.assert_close(fl(logits, labels, reduction_override='sum'),
                               2.0 * tv_focal(logits, onehot, 0.5, 1.0, reduction='sum'))
    # activated: probabilities in, same loss.
    probs = FocalLoss(activated=True, reduction='none')(logits.sigmoid(), labels)
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-4)


def test_weight_and_avg_factor():
    logits = torch.tensor([[2.0], [-1.0], [0.5], [3.0]])
    labels = torch.tensor([0, 1, 1, 0])  # RPN: 0 = object, 1 = background
    per = tv_focal(logits, (labels == 0).float()[:, None], reduction='none')  # (4, 1)
    w = torch.tensor([1., 1., 0., 2.])
    torch.testing.assert_close(FocalLoss()(logits, labels, w, avg_factor=2), (per[:, 0] * w).sum() / (2 + EPS))
    with pytest.raises(ValueError, match='avg_factor'):
        FocalLoss()(logits, labels, avg_factor=2, reduction_override='sum')
    with pytest.raises(ValueError, match='weight'):
        FocalLoss()(logits, labels, torch.ones(3))


def test_only_sigmoid():
    with pytest.raises(AssertionError):
        FocalLoss(use_sigmoid=False)


def test_focal_as_rpn_loss_cls_trains():
    from mmengine.structures import InstanceData

    from rcnn_plugins.models.dense_heads import RPNHead
    torch.manual_seed(0)
    head = RPNHead(in_channels=8, feat_channels=8,
                   anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0], strides=[8]),
                   loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                   train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.3,
                                                min_pos_iou=0.3),
                                  allowed_border=-1, pos_weight=-1, debug=False))  # no sampler: PseudoSampler
    assert type(head.sampler).__name__ == 'PseudoSampler' and head.cls_out_channels == 1
    x = [torch.rand(1, 8, 8, 8, requires_grad=True)]
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 40., 40.]]), labels=torch.tensor([0]))
    meta = dict(img_shape=(64, 64), pad_shape=(64, 64))
    losses = head.loss_by_feat(*head(x), [gt], [meta])
    total = sum(losses['loss_rpn_cls']) + sum(losses['loss_rpn_bbox'])
    total.backward()
    assert torch.isfinite(total) and total > 0
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)

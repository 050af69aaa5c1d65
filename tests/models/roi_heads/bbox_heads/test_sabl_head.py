"""SABLHead: bucket targets of a hand-made proposal/gt pair, losses against the formulas written out
here, gradients, the side-aware layout of the predictions and post-processing on hand predictions."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from rcnn_plugins.models.roi_heads.bbox_heads import SABLHead

# 4 buckets across an unscaled proposal: 2 per side, bucket width = w / 4.
TINY = dict(num_classes=3, cls_in_channels=4, reg_in_channels=4, roi_feat_size=2, reg_feat_up_ratio=2,
            cls_out_channels=8, reg_offset_out_channels=4, reg_cls_out_channels=4,
            bbox_coder=dict(type='BucketingBBoxCoder', num_buckets=4, scale_factor=1.0))


def _sampling(pos, gts, labels, neg):
    return SimpleNamespace(pos_priors=pos, neg_priors=neg, pos_gt_bboxes=gts, pos_gt_labels=labels,
                           priors=torch.cat([pos, neg]), pos_is_gt=torch.zeros(len(pos), dtype=torch.uint8))


def test_targets_of_a_hand_case():
    head = SABLHead(**TINY)
    # Proposal [0, 0, 8, 8]: bucket width 2; left/top centres 1, 3 (inwards), right/bottom 7, 5.
    res = _sampling(torch.tensor([[0., 0., 8., 8.]]), torch.tensor([[1.5, 2.6, 7., 4.5]]), torch.tensor([2]),
                    torch.tensor([[10., 10., 20., 20.]]))
    labels, label_weights, (cls_t, off_t), (cls_w, off_w) = head.get_targets([res], None)
    assert labels.tolist() == [2, 3] and label_weights.tolist() == [1., 1.]
    # left gt 1.5: (1-1.5)/2, (3-1.5)/2; right 7: 0, -1; top 2.6: -0.8, 0.2; bottom 4.5: 1.25, 0.25
    assert torch.allclose(off_t[0], torch.tensor([-0.25, 0.75, 0., -1., -0.8, 0.2, 1.25, 0.25]))
    assert cls_t[0].tolist() == [1, 0, 1, 0, 0, 1, 0, 1]  # nearest bucket per side
    # Non-label buckets less than one bucket from the gt side are ignored by the bucket loss.
    assert cls_w[0].tolist() == [1, 0, 1, 1, 0, 1, 1, 1]
    # Offsets: the nearest bucket, and the 2nd when closer than 1 bucket.
    assert off_w[0].tolist() == [1, 1, 1, 0, 1, 1, 0, 1]
    for t in (cls_t, off_t, cls_w, off_w):  # the negative has no box target
        assert t[1].abs().sum() == 0


def test_losses_match_the_formulas_and_backpropagate():
    torch.manual_seed(0)
    head = SABLHead(**TINY)
    res = _sampling(torch.tensor([[0., 0., 8., 8.], [2., 2., 12., 10.]]),
                    torch.tensor([[1.5, 2.6, 7., 4.5], [1., 3., 11., 9.]]), torch.tensor([2, 0]),
                    torch.tensor([[10., 10., 20., 20.]]))
    x = torch.randn(3, 4, 2, 2, requires_grad=True)
    cls_score, (bucket_cls, bucket_off) = head(x)
    assert cls_score.shape == (3, 4) and bucket_cls.shape == (3, 8) and bucket_off.shape == (3, 8)
    rois = torch.cat([torch.zeros(3, 1), res.priors], 1)
    out = head.loss_and_target(cls_score, (bucket_cls, bucket_off), rois, [res], None)
    losses = out['loss_bbox']
    labels, _, (cls_t, off_t), (cls_w, off_w) = out['bbox_targets']
    assert torch.allclose(losses['loss_cls'], F.cross_entropy(cls_score, labels))
    bce = F.binary_cross_entropy_with_logits(bucket_cls, cls_t, reduction='none')
    assert torch.allclose(losses['loss_bbox_cls'], (bce * cls_w).sum() / (3 * 4))  # over the 4R sides
    d = (bucket_off - off_t).abs()
    smooth = torch.where(d < 0.1, 0.5 * d * d / 0.1, d - 0.05)
    assert torch.allclose(losses['loss_bbox_reg'], (smooth * off_w).sum() / 3)  # over the R RoIs
    total = losses['loss_cls'] + losses['loss_bbox_cls'] + losses['loss_bbox_reg']
    total.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert head.fc_reg_offset.weight.grad.abs().sum() > 0 and head.upsample_x.weight.grad.abs().sum() > 0


def test_side_aware_split_orders_buckets_from_each_edge_inwards():
    head = SABLHead(**dict(TINY, roi_feat_size=3, bbox_coder=dict(type='BucketingBBoxCoder', num_buckets=6,
                                                                  scale_factor=1.0)))
    feat = torch.arange(6.)[None]
    assert head.side_aware_split(feat).tolist() == [[0, 1, 2, 5, 4, 3]]


def test_predict_on_hand_predictions():
    head = SABLHead(**dict(TINY, roi_feat_size=3, bbox_coder=dict(type='BucketingBBoxCoder', num_buckets=6,
                                                                  scale_factor=1.0)))
    # Proposal [0, 0, 12, 12]: bucket width 2; centres left/top 1, 3, 5; right/bottom 11, 9, 7.
    roi = torch.tensor([[0., 0., 0., 12., 12.]])
    side = torch.tensor([2., -1., 1.])  # best bucket 0, runner-up bucket 2: not neighbours
    bucket_cls = torch.cat([side, side.roll(1), side, side.roll(1)])[None]  # bests: 0, 1, 0, 1
    offsets = torch.full((1, 12), 0.5)  # side = centre - 0.5 bucket widths
    cls_score = torch.tensor([[0.1, 3., 0.2, 0.]])
    meta = dict(img_shape=(20, 20), scale_factor=(2., 2.))
    cfg = dict(score_thr=0.1, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)
    det = head.predict_by_feat([roi], [cls_score], [(bucket_cls, offsets)], [meta], cfg, rescale=True)[0]
    # left: 1 - 0.5*2 = 0; right: 9 - 1 = 8; top: 0; bottom: 8 -> /2 for rescale
    assert det.labels.tolist() == [1]
    assert torch.allclose(det.bboxes, torch.tensor([[0., 0., 4., 4.]]))
    p = F.softmax(side, 0)
    p_roll = F.softmax(side.roll(1), 0)
    # Left/top: best 0, 2nd bucket 2 (not adjacent); right/bottom (rolled): best 1, 2nd 0 (adjacent).
    conf = (2 * p[0] + 2 * (p_roll[1] + p_roll[0])) / 4
    assert torch.allclose(det.scores, F.softmax(cls_score, 1)[0, 1] * conf)
    raw = head.predict_by_feat([roi], [cls_score], [(bucket_cls, offsets)], [meta], None)[0]
    assert raw.bboxes.shape == (1, 4) and raw.scores.shape == (1, 4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='reg_class_agnostic'):
        SABLHead(**dict(TINY, reg_class_agnostic=False))
    with pytest.raises(ValueError, match='num_buckets'):
        SABLHead(**dict(TINY, roi_feat_size=3))


def test_init_follows_mmdetection():
    torch.manual_seed(0)
    head = SABLHead(num_classes=3)
    head.init_weights()
    assert abs(head.fc_cls.weight.std().item() - 0.01) < 1e-3
    assert abs(head.fc_reg_offset.weight.std().item() - 0.001) < 1e-4
    assert abs(head.reg_conv_att_x.weight.std().item() - 0.01) < 3e-3
    # Kaiming (fan_out, normal) on the transposed convs, not the default uniform init.
    assert head.upsample_x.weight.std().item() > 0.05


def test_refine_bboxes_decodes_buckets_and_drops_gt_proposals():
    torch.manual_seed(0)
    head = SABLHead(**TINY)
    pos = torch.tensor([[0., 0., 8., 8.], [2., 2., 12., 10.]])
    res = _sampling(pos, pos.clone(), torch.tensor([2, 0]), torch.tensor([[10., 10., 20., 20.]]))
    res.pos_is_gt = torch.tensor([1, 0], dtype=torch.uint8)  # the first positive is a gt box
    rois = torch.cat([torch.zeros(3, 1), res.priors], 1)
    cls_score, bbox_pred = head(torch.randn(3, 4, 2, 2))
    meta = dict(img_shape=(32, 32))
    refined = head.refine_bboxes([res], dict(rois=rois, cls_score=cls_score, bbox_pred=bbox_pred,
                                             bbox_targets=head.get_targets([res], None)), [meta])[0]
    expected, _ = head.bbox_coder.decode(res.priors, bbox_pred, max_shape=(32, 32))
    assert torch.allclose(refined.bboxes, expected[1:])


def test_a_cascade_of_sabl_heads_trains_and_predicts():
    from mmengine.structures import InstanceData

    from rcnn_plugins.models.roi_heads import CascadeRoIHead
    from rcnn_plugins.structures import DetDataSample
    torch.manual_seed(0)
    stage = dict(TINY, type='SABLHead', roi_feat_size=7,
                 bbox_coder=dict(type='BucketingBBoxCoder', num_buckets=14, scale_factor=1.5))
    extractor = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                     out_channels=4, featmap_strides=[4])
    rcnn = [dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=t, neg_iou_thr=t, min_pos_iou=t),
                 sampler=dict(type='RandomSampler', num=8, pos_fraction=0.25)) for t in (0.5, 0.6)]
    head = CascadeRoIHead(num_stages=2, stage_loss_weights=[1, 0.5], bbox_roi_extractor=extractor, bbox_head=stage,
                          train_cfg=rcnn, test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                                                        max_per_img=4))
    x = [torch.randn(1, 4, 16, 16)]
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 40., 44.]]), labels=torch.tensor([1]))
    proposals = [InstanceData(bboxes=torch.tensor([[6., 9., 38., 40.], [30., 30., 60., 60.]]))]
    losses = head.loss(x, proposals, [sample])
    assert {'s0.loss_bbox_cls', 's1.loss_bbox_reg', 's1.loss_cls'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    head.eval()
    with torch.no_grad():
        det = head.predict(x, proposals, [sample])[0]
    assert det.bboxes.shape[1] == 4 and 0 < len(det) <= 4

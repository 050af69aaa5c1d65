"""MultiInstanceRoIHead (CrowdDet): losses with and without the refine module, ignore boxes reaching the
sampler, and detections taken from the refined outputs."""
import copy

import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.roi_heads import MultiInstanceRoIHead
from rcnn_plugins.structures import DetDataSample, bbox2roi

TRAIN = dict(assigner=dict(type='MultiInstanceAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.3,
                           match_low_quality=False, ignore_iof_thr=-1),
             sampler=dict(type='MultiInsRandomSampler', num=32, pos_fraction=0.5, neg_pos_ub=-1,
                          add_gt_as_proposals=False),
             pos_weight=-1, debug=False)
TEST = dict(nms=dict(type='nms', iou_threshold=0.5), score_thr=0.0, max_per_img=50)


def build(with_refine):
    torch.manual_seed(0)
    h = MultiInstanceRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8, featmap_strides=[4],
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=-1, aligned=True,
                                               use_torchvision=True)),
        bbox_head=dict(type='MultiInstanceBBoxHead', with_refine=with_refine, num_shared_fcs=2, in_channels=8,
                       fc_out_channels=16, roi_feat_size=7, num_classes=1,
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, reduction='none'),
                       loss_bbox=dict(type='SmoothL1Loss', reduction='none')),
        train_cfg=TRAIN, test_cfg=TEST)
    return h


def inputs():
    torch.manual_seed(1)
    x = (torch.randn(1, 8, 32, 32),)
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), scale_factor=(1., 1.)))
    # Two overlapping people and one crowd region to ignore.
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[20., 20., 50., 100.], [35., 22., 65., 104.]]),
                                       labels=torch.tensor([0, 0]))
    sample.ignored_instances = InstanceData(bboxes=torch.tensor([[80., 10., 125., 60.]]),
                                            labels=torch.tensor([-1]))
    props = torch.cat([torch.tensor([[22., 20., 60., 100.], [28., 21., 58., 102.], [85., 15., 120., 55.]]),
                       torch.tensor([[0., 0., 16., 16.], [100., 100., 127., 127.], [5., 60., 30., 120.]])])
    return x, [InstanceData(bboxes=props, scores=torch.ones(6))], [sample]


def test_losses_plain_and_refined():
    x, props, samples = inputs()
    plain, refine = build(False), build(True)
    refine.load_state_dict(plain.state_dict(), strict=False)
    torch.manual_seed(2)
    loss_plain = plain.loss(x, copy.deepcopy(props), samples)
    torch.manual_seed(2)
    loss_refine = refine.loss(x, copy.deepcopy(props), samples)
    assert set(loss_plain) == {'loss_rcnn_emd'}
    assert set(loss_refine) == {'loss_rcnn_emd', 'loss_rcnn_emd_ref'}
    # Same first-stage weights and the same sample: the refine module only adds its own term.
    torch.testing.assert_close(loss_refine['loss_rcnn_emd'], loss_plain['loss_rcnn_emd'])
    total = sum(loss_refine.values())
    assert torch.isfinite(total)
    total.backward()
    assert refine.bbox_head.shared_fcs_ref.weight.grad.abs().sum() > 0
    assert refine.bbox_head.fc_reg[1].weight.grad.abs().sum() > 0


def test_ignore_boxes_reach_the_sampler():
    x, props, samples = inputs()
    h = build(False)
    results, _ = h.assign_and_sample(x, props, samples)
    res = results[0]
    # Candidates: 6 proposals + 2 gts + 1 ignore box. The proposal inside the crowd region (index 2)
    # and the ignore box itself (index 8) have an ignore target first, so they are never sampled.
    sampled = set(res.pos_inds.tolist()) | set(res.neg_inds.tolist())
    assert 2 not in sampled and 8 not in sampled
    assert {0, 1, 6, 7} <= set(res.pos_inds.tolist())  # both proposals on the pair, and the two gts
    # Proposal 1 overlaps both people (IoU 0.56 and 0.60): its two targets are the two gts, both positive.
    row = res.pos_inds.tolist().index(1)
    assert sorted(res.pos_assigned_gt_inds[row].tolist()) == [0, 1] and res.pos_gt_labels[row].tolist() == [1, 1]


def test_predict_uses_the_refined_outputs():
    x, props, samples = inputs()
    h = build(True)
    h.eval()
    with torch.no_grad():
        dets = h.predict(x, props, samples)[0]
        rois = bbox2roi([props[0].bboxes])
        feats = h.bbox_roi_extractor(x, rois)
        _, _, cls_ref, reg_ref = h.bbox_head(feats)
        expected = h.bbox_head.predict_by_feat([rois], [cls_ref], [reg_ref], [samples[0].metainfo], TEST)[0]
    torch.testing.assert_close(dets.bboxes, expected.bboxes)
    torch.testing.assert_close(dets.scores, expected.scores)
    # ... and not the first-stage outputs.
    with torch.no_grad():
        cls, reg, _, _ = h.bbox_head(feats)
        first = h.bbox_head.predict_by_feat([rois], [cls], [reg], [samples[0].metainfo], TEST)[0]
    assert not (len(first) == len(dets) and torch.allclose(first.scores, dets.scores))


def test_image_without_people_trains_on_background():
    x, props, samples = inputs()
    samples[0].gt_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    h = build(True)
    for ignore in (samples[0].ignored_instances, None):  # only a crowd region; nothing at all
        if ignore is None:
            del samples[0].ignored_instances
        results, _ = h.assign_and_sample(x, props, samples)
        assert results[0].pos_inds.numel() == 0 and results[0].neg_inds.numel() > 0
        losses = h.loss(x, copy.deepcopy(props), samples)
        total = sum(losses.values())
        assert torch.isfinite(total)
        h.zero_grad()
        total.backward()
        assert all(torch.isfinite(p.grad).all() for p in h.parameters() if p.grad is not None)

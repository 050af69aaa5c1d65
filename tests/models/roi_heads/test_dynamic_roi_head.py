"""Dynamic R-CNN: after update_iter_interval iterations the assigner's IoU thresholds and the
SmoothL1 beta equal the paper's statistics, worked out by hand on a two-iteration case."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.roi_heads import DynamicRoIHead
from rcnn_plugins.structures import DetDataSample


def make_head(interval=2, initial_iou=0.4, initial_beta=2.0):
    return DynamicRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=4, featmap_strides=[4, 8, 16, 32],
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, num_classes=2,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       loss_bbox=dict(type='SmoothL1Loss', beta=0.3, loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                          match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=64, pos_fraction=1.0, neg_pos_ub=-1, add_gt_as_proposals=True),
            pos_weight=-1,
            dynamic_rcnn=dict(iou_topk=3, beta_topk=3, update_iter_interval=interval, initial_iou=initial_iou,
                              initial_beta=initial_beta)))


def step(head, starts):
    # gt [0, 0, 100, 100]; proposal [x, 0, x + 100, 100] has IoU (100 - x) / (100 + x) and target
    # dx = -x / 100 / 0.1, dy = 0: mean(|dx|, |dy|) = x / 20.
    sample = DetDataSample(metainfo=dict(img_shape=(200, 200), scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 100., 100.]]), labels=torch.tensor([1]))
    props = [InstanceData(bboxes=torch.tensor([[float(x), 0., x + 100., 100.] for x in starts]))]
    x = tuple(torch.randn(1, 4, 256 // s, 256 // s) for s in (4, 8, 16, 32))
    return head.loss(x, props, [sample])


def test_thresholds_and_beta_by_hand():
    head = make_head()
    # Iteration 1: IoUs with the gt added as a proposal: 1, 1, .818, .667, .333 -> 3rd largest .818.
    #   positives (IoU >= .5): gt, x=0, 10, 20 -> x/20 = 0, 0, .5, 1 -> 3rd smallest .5.
    losses = step(head, [0, 10, 20, 50])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'acc'}
    assert head.bbox_assigner.pos_iou_thr == 0.5 and head.bbox_head.loss_bbox.beta == 0.3  # not yet
    assert len(head.iou_history) == 1 and len(head.beta_history) == 1
    assert head.iou_history[0].item() == pytest.approx(90 / 110, abs=1e-6)
    assert head.beta_history[0].item() == pytest.approx(0.5, abs=1e-5)
    # Iteration 2: IoUs 1, .667, .538, .429 -> 3rd largest .538; positives gt, 20, 30 -> 0, 1, 1.5;
    #   k = min(3 * 1 image, 3 positives) = 3 -> 1.5.
    step(head, [20, 30, 40])
    iou = max(0.4, (90 / 110 + 70 / 130) / 2)
    for name in ('pos_iou_thr', 'neg_iou_thr', 'min_pos_iou'):
        assert getattr(head.bbox_assigner, name) == pytest.approx(iou, abs=1e-6)
    # median of [.5, 1.5] is their mean (numpy's, as MMDetection): 1.0 < initial_beta 2.0.
    assert head.bbox_head.loss_bbox.beta == pytest.approx(1.0, abs=1e-5)
    assert head.iou_history == [] and head.beta_history == []


def test_initial_values_bound_the_updates():
    head = make_head(interval=1, initial_iou=0.9, initial_beta=0.2)
    step(head, [0, 10, 20, 50])
    assert head.bbox_assigner.pos_iou_thr == 0.9  # max(initial_iou, .818)
    assert head.bbox_head.loss_bbox.beta == pytest.approx(0.2)  # min(initial_beta, .5)


def test_needs_smooth_l1_and_dynamic_cfg():
    with pytest.raises(ValueError, match='SmoothL1Loss'):
        DynamicRoIHead(bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=4, featmap_strides=[4],
                                               roi_layer=dict(type='RoIAlign', output_size=7)),
                       bbox_head=dict(type='Shared2FCBBoxHead', in_channels=4, num_classes=2,
                                      loss_bbox=dict(type='L1Loss')))

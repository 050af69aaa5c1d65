"""Soft-NMS through the second stage's and the RPN's post-processing: the reported scores are the
decayed ones (a duplicate keeps its box but not its score), checked by hand."""
import torch

from rcnn_plugins.models.postprocess import rcnn_detections, rpn_proposals
from rcnn_plugins.models.task_modules.coders.delta_xywh_bbox_coder import DeltaXYWHBBoxCoder

SOFT = dict(type='soft_nms', iou_threshold=0.3, min_score=0.01)


def test_rcnn_detections_report_decayed_scores():
    coder = DeltaXYWHBBoxCoder()
    # Two proposals of one class overlapping with IoU 81/119, zero deltas: the boxes stay put.
    proposals = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]])
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])      # class 0, background
    logits = probs.log()
    boxes, scores, labels = rcnn_detections(proposals, logits, torch.zeros(2, 4), coder, torch.tensor([50., 50.]),
                                            dict(score_thr=0.05, nms=SOFT, max_per_img=10))
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.6 * (1 - 81 / 119)]))
    torch.testing.assert_close(boxes, proposals)
    assert labels.tolist() == [0, 0]


def test_rpn_proposals_report_decayed_scores():
    coder = DeltaXYWHBBoxCoder()
    anchors = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [30., 30., 40., 40.]])
    boxes, scores = rpn_proposals([torch.tensor([0.9, 0.6, 0.5])], [torch.zeros(3, 4)], [anchors], coder,
                                  torch.tensor([50., 50.]), dict(nms=SOFT, max_per_img=10, nms_pre=-1))
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.5, 0.6 * (1 - 81 / 119)]))
    torch.testing.assert_close(boxes, anchors[[0, 2, 1]])

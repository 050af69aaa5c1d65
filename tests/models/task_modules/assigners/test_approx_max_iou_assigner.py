"""ApproxMaxIoUAssigner on a hand case: a square takes the best IoU of its approxs."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.registry import TASK_UTILS

CFG = dict(type='ApproxMaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3)
SQUARES = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 20.], [50., 50., 60., 60.]])
APPROXS = torch.tensor([
    [[0., 0., 10., 10.], [0., 0., 20., 20.]],     # IoUs with the gt 1 and 0.25: best 1 -> positive
    [[0., 0., 10., 20.], [20., 20., 30., 30.]],   # 0.5 and 0: best 0.5, between the thresholds -> ignored
    [[50., 50., 60., 60.], [0., 0., 5., 5.]],     # 0 and 0.25: best 0.25 < 0.3 -> negative
])
GT = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.]]), labels=torch.tensor([3]))


def test_best_approx_decides():
    result = TASK_UTILS.build(CFG).assign(InstanceData(priors=SQUARES, approxs=APPROXS), GT)
    assert result.gt_inds.tolist() == [1, -1, 0]
    assert result.max_overlaps.tolist() == pytest.approx([1., .5, .25])
    assert result.labels.tolist() == [3, -1, -1]
    # The plain assigner on the squares alone: square 2's own box misses the gt (0), where its
    # second approx reaches 0.25.
    plain = TASK_UTILS.build(dict(CFG, type='MaxIoUAssigner')).assign(InstanceData(priors=SQUARES), GT)
    assert plain.max_overlaps.tolist() == pytest.approx([1., .5, 0.])


def test_ignore_boxes_and_empty_gt():
    ignore = InstanceData(bboxes=torch.tensor([[48., 48., 62., 62.]]))
    result = TASK_UTILS.build(dict(CFG, ignore_iof_thr=0.5)).assign(
        InstanceData(priors=SQUARES, approxs=APPROXS), GT, ignore)
    assert result.gt_inds.tolist() == [1, -1, -1]
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    result = TASK_UTILS.build(CFG).assign(InstanceData(priors=SQUARES, approxs=APPROXS), empty)
    assert result.gt_inds.tolist() == [0] * 3
    with pytest.raises(ValueError, match='approxs'):
        TASK_UTILS.build(CFG).assign(InstanceData(priors=SQUARES), GT)

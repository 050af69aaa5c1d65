"""empty_instances: our short form and MMDetection's (batch_img_metas, device, task_type, ...)."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.utils import empty_instances


def test_short_form():
    res = empty_instances(torch.device('cpu'))
    assert res.bboxes.shape == (0, 4) and res.scores.shape == (0,) and res.labels.dtype == torch.long


def test_mmdetection_form():
    out = empty_instances([dict(), dict()], torch.device('cpu'), task_type='bbox')
    assert len(out) == 2 and all(r.bboxes.shape == (0, 4) and r.scores.shape == (0,) for r in out)
    per_cls = empty_instances([dict()], 'cpu', 'bbox', num_classes=3, score_per_cls=True)
    assert per_cls[0].scores.shape == (0, 4)
    given = [InstanceData(metainfo=dict(img_id=7))]
    filled = empty_instances([dict()], 'cpu', 'bbox', instance_results=given)
    assert filled[0] is given[0] and filled[0].img_id == 7 and filled[0].labels.shape == (0,)
    with pytest.raises(AssertionError):
        empty_instances([dict()], 'cpu', task_type='keypoint')
    with pytest.raises(NotImplementedError, match='mask'):
        empty_instances([dict()], 'cpu', task_type='mask')
    with pytest.raises(AssertionError):
        empty_instances([dict(), dict()], 'cpu', 'bbox', instance_results=given)

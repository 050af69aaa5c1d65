"""FilterAnnotations: width/height must exceed min_gt_bbox_wh (strictly); labels and ignore flags
follow their boxes; keep_empty returns None when nothing is left."""
import numpy as np
import pytest

from rcnn_plugins.datasets.transforms import FilterAnnotations


def test_filter_by_size():
    res = dict(gt_bboxes=np.array([[0, 0, 1, 5], [0, 0, 5, 5], [0, 0, 5, 1.5], [2, 2, 4, 4]], dtype=np.float32),
               gt_bboxes_labels=np.array([0, 1, 2, 3]), gt_ignore_flags=np.array([False, False, False, True]))
    out = FilterAnnotations(min_gt_bbox_wh=(1, 1))(res)
    # Width 1 is not > 1: the first box goes; 5 x 1.5 stays; the ignore box stays with its flag.
    assert out['gt_bboxes_labels'].tolist() == [1, 2, 3] and out['gt_ignore_flags'].tolist() == [False, False, True]
    out = FilterAnnotations(min_gt_bbox_wh=(2, 2))(out)
    assert out['gt_bboxes_labels'].tolist() == [1]


def test_empty_and_errors():
    res = dict(gt_bboxes=np.array([[0, 0, 1, 1]], dtype=np.float32), gt_bboxes_labels=np.array([0]),
               gt_ignore_flags=np.array([False]))
    assert FilterAnnotations()(dict(res)) is None
    out = FilterAnnotations(keep_empty=False)(dict(res))
    assert out['gt_bboxes'].shape == (0, 4)
    none = dict(gt_bboxes=np.zeros((0, 4), np.float32), gt_bboxes_labels=np.zeros(0, np.int64))
    assert FilterAnnotations()(none) is none
    with pytest.raises(NotImplementedError, match='masks'):
        FilterAnnotations(by_mask=True)

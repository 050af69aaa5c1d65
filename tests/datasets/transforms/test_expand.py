"""Expand: canvas size, mean colour (RGB reversed), image placement and box shift by hand."""
import numpy as np

from rcnn_plugins.datasets.transforms import Expand


def test_expand_by_hand():
    img = np.full((20, 30, 3), 200, dtype=np.uint8)
    res = dict(img=img, img_shape=(20, 30), gt_bboxes=np.array([[1, 2, 11, 12]], dtype=np.float32),
               gt_bboxes_labels=np.array([4]), gt_ignore_flags=np.array([True]))
    t = Expand(mean=(1, 2, 3), to_rgb=True, ratio_range=(1, 4), prob=1.0)
    t._random_ratio = lambda: 2.0
    t._random_left_top = lambda ratio, h, w: (5, 3)
    out = t(res)
    assert out['img'].shape == (40, 60, 3) and out['img_shape'] == (40, 60)
    assert out['img'][0, 0].tolist() == [3, 2, 1]                      # mean reversed to BGR
    assert (out['img'][3:23, 5:35] == 200).all() and out['img'][23, 5].tolist() == [3, 2, 1]
    np.testing.assert_array_equal(out['gt_bboxes'], [[6, 5, 16, 15]])
    assert out['gt_ignore_flags'].tolist() == [True]


def test_expand_probability():
    res = dict(img=np.zeros((4, 4, 3), np.uint8), img_shape=(4, 4), gt_bboxes=np.zeros((0, 4), np.float32))
    t = Expand(prob=0.0)
    assert t(dict(res))['img'].shape == (4, 4, 3)

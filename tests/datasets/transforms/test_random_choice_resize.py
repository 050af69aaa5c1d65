"""mmcv's RandomChoiceResize / RandomResize resolve their inner resize to our Resize with or
without default_scope (multi-scale training of the ms-3x configs); boxes scaled by hand."""
import numpy as np

from rcnn_plugins.datasets.transforms import RandomChoiceResize, RandomResize, Resize
from rcnn_plugins.registry import TRANSFORMS


def sample():
    return dict(img=np.zeros((20, 30, 3), np.uint8), img_shape=(20, 30),
                gt_bboxes=np.array([[1, 2, 29, 19]], np.float32), gt_bboxes_labels=np.array([0]))


def test_choice_resize_uses_our_resize():
    t = TRANSFORMS.build(dict(type='RandomChoiceResize', scales=[(60, 40)], keep_ratio=True))
    assert isinstance(t, RandomChoiceResize) and type(t.resize) is Resize
    out = t(sample())
    assert out['img_shape'] == (40, 60) and out['scale_factor'] == (2.0, 2.0)
    np.testing.assert_array_equal(out['gt_bboxes'], [[2, 4, 58, 38]])
    assert out['gt_bboxes'].dtype == np.float32


def test_random_resize_range():
    t = TRANSFORMS.build(dict(type='RandomResize', scale=[(30, 20), (90, 60)], keep_ratio=True))
    assert isinstance(t, RandomResize) and type(t.resize) is Resize
    np.random.seed(0)
    for _ in range(5):
        out = t(sample())
        h, w = out['img_shape']
        fx, fy = out['scale_factor']
        assert 20 <= h <= 60 and abs(w / h - 1.5) < 0.1
        np.testing.assert_allclose(out['gt_bboxes'], [[1 * fx, 2 * fy, 29 * fx, 19 * fy]], rtol=1e-5)

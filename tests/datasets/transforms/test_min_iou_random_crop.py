"""MinIoURandomCrop with its random draws fixed: box kept by its centre, a box cut by the patch,
a box whose centre leaves it, an ignore box; a patch below the IoU threshold is rejected."""
import numpy as np

from rcnn_plugins.datasets.transforms import MinIoURandomCrop


def draws(monkeypatch, values):
    """np.random.uniform returns these values in order (new_w, new_h, left, top, ...)."""
    it = iter(values)
    monkeypatch.setattr(np.random, 'uniform', lambda *a, **k: next(it))


def test_patch_by_hand(monkeypatch):
    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    boxes = np.array([[6, 4, 14, 12], [21, 10, 29, 18], [8, 8, 12, 12], [20, 1, 26, 5]], dtype=np.float32)
    res = dict(img=img, img_shape=(20, 30), gt_bboxes=boxes, gt_bboxes_labels=np.array([0, 1, 2, 3]),
               gt_ignore_flags=np.array([False, False, True, False]))
    t = MinIoURandomCrop()
    t._random_mode = lambda: 0.0
    draws(monkeypatch, [20.0, 16.0, 4.5, 2.7])   # patch (4, 2, 24, 18)
    out = t(res)
    np.testing.assert_array_equal(out['img'], img[2:18, 4:24])
    # Centres: (10,8) in; (25,14) out (x not < 24); (10,10) in; (23,3) in and cut: [16,-1,22,3] -> [16,0,20,3].
    np.testing.assert_array_equal(out['gt_bboxes'], [[2, 2, 10, 10], [4, 6, 8, 10], [16, 0, 20, 3]])
    assert out['gt_bboxes_labels'].tolist() == [0, 2, 3] and out['gt_ignore_flags'].tolist() == [False, True, False]


def test_patch_below_min_iou_is_rejected(monkeypatch):
    img = np.zeros((20, 30, 3), np.uint8)
    res = dict(img=img, img_shape=(20, 30), gt_bboxes=np.array([[6, 4, 14, 12]], dtype=np.float32),
               gt_bboxes_labels=np.array([0]), gt_ignore_flags=np.array([False]))
    t = MinIoURandomCrop()
    t._random_mode = lambda: 0.3
    # First patch (4,2,24,18): IoU 64/320 = 0.2 < 0.3, rejected; second (5,3,15,13): IoU 0.64.
    draws(monkeypatch, [20.0, 16.0, 4.5, 2.7, 10.0, 10.0, 5.0, 3.0])
    out = t(res)
    assert out['img_shape'] == (10, 10)
    np.testing.assert_array_equal(out['gt_bboxes'], [[1, 1, 9, 9]])


def test_mode_one_keeps_image():
    res = dict(img=np.zeros((5, 5, 3), np.uint8), img_shape=(5, 5), gt_bboxes=np.zeros((0, 4), np.float32))
    t = MinIoURandomCrop()
    t._random_mode = lambda: 1
    assert t(res)['img'].shape == (5, 5, 3)

"""RandomCrop on a 20 x 30 image, boxes checked by hand: a box the crop cuts, a box that leaves
the crop, an ignore box (its flag must stay with it)."""
import numpy as np
import pytest

from rcnn_plugins.datasets.transforms import RandomCrop


def sample():
    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    return dict(img=img, img_shape=(20, 30),
                gt_bboxes=np.array([[2, 2, 12, 12], [25, 15, 29, 19], [5, 5, 8, 8]], dtype=np.float32),
                gt_bboxes_labels=np.array([0, 1, 2]), gt_ignore_flags=np.array([False, False, True]))


def fixed(t, offset):
    t._rand_offset = lambda margin: offset  # the random offset, fixed for the hand computation
    return t


def test_absolute_crop_cuts_drops_and_keeps_ignore():
    res = sample()
    img = res['img'].copy()
    out = fixed(RandomCrop(crop_size=(10, 8)), (3, 4))(res)   # crop (w, h) = (10, 8) at y=3, x=4
    np.testing.assert_array_equal(out['img'], img[3:11, 4:14])
    assert out['img_shape'] == (8, 10)
    # [2,2,12,12] -> shifted [-2,-1,8,9] -> clipped [0,0,8,8]; [25,15,29,19] -> [21,12,25,16] ->
    # clipped [10,8,10,8]: outside, dropped; the ignore box [5,5,8,8] -> [1,2,4,5], still ignored.
    np.testing.assert_array_equal(out['gt_bboxes'], [[0, 0, 8, 8], [1, 2, 4, 5]])
    assert out['gt_bboxes'].dtype == np.float32
    assert out['gt_bboxes_labels'].tolist() == [0, 2] and out['gt_ignore_flags'].tolist() == [False, True]
    np.testing.assert_array_equal(out['homography_matrix'], [[1, 0, -4], [0, 1, -3], [0, 0, 1]])


def test_no_clip_keeps_box_extent():
    out = fixed(RandomCrop(crop_size=(10, 8), bbox_clip_border=False), (3, 4))(sample())
    np.testing.assert_array_equal(out['gt_bboxes'], [[-2, -1, 8, 9], [1, 2, 4, 5]])


def test_negative_crop():
    res = sample()
    res['gt_bboxes'] = res['gt_bboxes'][1:2]
    res['gt_bboxes_labels'], res['gt_ignore_flags'] = res['gt_bboxes_labels'][1:2], res['gt_ignore_flags'][1:2]
    assert fixed(RandomCrop(crop_size=(10, 8)), (0, 0))(dict(res)) is None
    out = fixed(RandomCrop(crop_size=(10, 8), allow_negative_crop=True), (0, 0))(dict(res))
    assert out['gt_bboxes'].shape == (0, 4) and out['gt_bboxes_labels'].shape == (0,)


def test_crop_sizes_by_type():
    h, w = 20, 30
    t = RandomCrop(crop_size=(0.5, 0.5), crop_type='relative')
    assert t._get_crop_size((h, w)) == (10, 15)
    t = RandomCrop(crop_size=(100, 100))
    assert t._get_crop_size((h, w)) == (20, 30)  # larger than the image: the whole image
    np.random.seed(0)
    t = RandomCrop(crop_size=(12, 25), crop_type='absolute_range')
    sizes = {t._get_crop_size((h, w)) for _ in range(200)}
    assert all(12 <= ch <= 20 and 12 <= cw <= 25 for ch, cw in sizes) and len(sizes) > 20
    t = RandomCrop(crop_size=(0.5, 0.8), crop_type='relative_range')  # (h, w) ratio minima
    sizes = {t._get_crop_size((h, w)) for _ in range(200)}
    assert all(10 <= ch <= 20 and 24 <= cw <= 30 for ch, cw in sizes) and len(sizes) > 10
    with pytest.raises(ValueError, match='crop_type'):
        RandomCrop(crop_size=(10, 10), crop_type='centre')
    with pytest.raises(ValueError, match='positive int'):
        RandomCrop(crop_size=(0.5, 0.5))


def test_recompute_bbox_without_masks_is_a_no_op():
    # MMDetection recomputes boxes only from gt_masks (LSJ configs set it on box-only data)
    out = fixed(RandomCrop(crop_size=(10, 8), recompute_bbox=True), (3, 4))(sample())
    np.testing.assert_array_equal(out['gt_bboxes'], [[0, 0, 8, 8], [1, 2, 4, 5]])
    with pytest.raises(NotImplementedError, match='masks'):
        fixed(RandomCrop(crop_size=(10, 8), recompute_bbox=True), (3, 4))(dict(sample(), gt_masks=object()))

"""Transforms: image loading of every colour layout, annotations, Resize, RandomFlip and
PackDetInputs, checked against values worked out by hand or against cv2/PIL directly."""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from PIL import Image

from rcnn_plugins.datasets import DatasetError
from rcnn_plugins.datasets.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs, RandomFlip, Resize


def load(path, **kwargs):
    return LoadImageFromFile(**kwargs)(dict(img_path=str(path)))


# ---------------------------------------------------------------- LoadImageFromFile

def test_load_color_png_is_bgr_uint8(tmp_path):
    img = np.zeros((5, 7, 3), np.uint8)
    img[..., 2] = 200  # red in BGR
    img[1, 2] = (1, 2, 3)
    cv2.imwrite(str(tmp_path / 'c.png'), img)
    out = load(tmp_path / 'c.png')
    assert out['img'].dtype == np.uint8 and out['img'].shape == (5, 7, 3)
    np.testing.assert_array_equal(out['img'], img)
    assert out['img_shape'] == (5, 7) and out['ori_shape'] == (5, 7)


def test_load_grayscale_gives_three_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / 'g.png'), gray)
    out = load(tmp_path / 'g.png')['img']
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_load_rgba_drops_alpha(tmp_path):
    bgra = np.zeros((4, 6, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0  # fully transparent
    cv2.imwrite(str(tmp_path / 'a.png'), bgra)
    out = load(tmp_path / 'a.png')['img']
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, bgra[..., :3])


@pytest.mark.parametrize('channels', [1, 3])
def test_load_16bit_is_scaled_not_truncated(tmp_path, channels):
    values = np.array([[0, 1000, 30000, 65535]], dtype=np.uint16)
    img16 = values if channels == 1 else np.repeat(values[..., None], 3, axis=2)
    cv2.imwrite(str(tmp_path / 'd.png'), img16)
    assert cv2.imread(str(tmp_path / 'd.png'), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really 16-bit
    out = load(tmp_path / 'd.png')['img']
    assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
    # 1000 * 255 / 65535 = 3.89 -> 4 (truncation to uint8 would give 1000 % 256 = 232);
    # 30000 * 255 / 65535 = 116.7 -> 117; 65535 -> 255.
    for c in range(3):
        assert out[0, :, c].tolist() == [0, 4, 117, 255]


def test_load_applies_exif_orientation(tmp_path):
    # Stored 40 wide x 20 high, left half red, right half blue; orientation 6 means "rotate 90
    # degrees clockwise to display": displayed 20 wide x 40 high, red on top, blue below.
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)
    rgb[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / 'e.jpg', exif=exif.tobytes(), quality=95)
    assert Image.open(tmp_path / 'e.jpg').getexif()[0x0112] == 6
    out = load(tmp_path / 'e.jpg')
    assert out['img'].shape == (40, 20, 3) and out['ori_shape'] == (40, 20)
    top, bottom = out['img'][5, 10].astype(int), out['img'][35, 10].astype(int)
    assert top[2] > 200 and top[0] < 50  # BGR red
    assert bottom[0] > 200 and bottom[2] < 50  # BGR blue


def test_load_missing_or_corrupt_file_names_the_path(tmp_path):
    missing = tmp_path / 'nope.jpg'
    with pytest.raises(DatasetError, match='nope.jpg'):
        load(missing)
    (tmp_path / 'bad.jpg').write_bytes(b'\xff\xd8 this is not a jpeg' * 10)
    with pytest.raises(DatasetError, match='bad.jpg'):
        load(tmp_path / 'bad.jpg')
    assert load(tmp_path / 'bad.jpg', ignore_empty=True) is None
    assert load(missing, ignore_empty=True) is None


# ---------------------------------------------------------------- LoadAnnotations

def test_load_annotations_arrays():
    results = dict(instances=[dict(bbox=[1, 2, 3, 4], bbox_label=2, ignore_flag=0),
                              dict(bbox=[5.5, 6, 7, 8], bbox_label=0, ignore_flag=1)])
    out = LoadAnnotations()(results)
    assert out['gt_bboxes'].dtype == np.float32 and out['gt_bboxes'].shape == (2, 4)
    np.testing.assert_array_equal(out['gt_bboxes'], [[1, 2, 3, 4], [5.5, 6, 7, 8]])
    assert out['gt_bboxes_labels'].dtype == np.int64 and out['gt_bboxes_labels'].tolist() == [2, 0]
    assert out['gt_ignore_flags'].dtype == bool and out['gt_ignore_flags'].tolist() == [False, True]
    empty = LoadAnnotations()(dict(instances=[]))
    assert empty['gt_bboxes'].shape == (0, 4) and empty['gt_bboxes_labels'].shape == (0,)
    assert empty['gt_ignore_flags'].shape == (0,)


def test_load_annotations_mmdet_arguments_and_repr():
    """MMDetection configs pass with_mask / poly2mask / box_type; 'hbox' and None give the same arrays."""
    results = dict(instances=[dict(bbox=[1, 2, 3, 4], bbox_label=2, ignore_flag=0)])
    for box_type in ('hbox', None):
        t = LoadAnnotations(with_bbox=True, with_mask=False, poly2mask=False, box_type=box_type)
        out = t(copy.deepcopy(results))
        assert isinstance(out['gt_bboxes'], np.ndarray)
        np.testing.assert_array_equal(out['gt_bboxes'], [[1, 2, 3, 4]])
    with pytest.raises(NotImplementedError, match='masks are not supported yet'):
        LoadAnnotations(with_mask=True)
    with pytest.raises(ValueError, match="box_type must be 'hbox' or None"):
        LoadAnnotations(box_type='rbox')
    assert repr(LoadAnnotations(with_bbox=True)) == (
        "LoadAnnotations(with_bbox=True, with_label=True, with_mask=False, with_seg=False, poly2mask=True, "
        "imdecode_backend='cv2', backend_args=None)")


# ---------------------------------------------------------------- Resize

def test_resize_keep_ratio_sizes_and_boxes():
    img = np.zeros((480, 640, 3), np.uint8)
    boxes = np.array([[10, 20, 100, 200], [600, 400, 650, 500]], np.float32)
    out = Resize(scale=(1333, 800), keep_ratio=True)(dict(img=img, gt_bboxes=boxes.copy()))
    # factor min(1333/640, 800/480) = 5/3: 640 * 5/3 = 1066.7 -> 1067, 480 -> 800
    assert out['img'].shape == (800, 1067, 3) and out['img_shape'] == (800, 1067)
    w_scale, h_scale = out['scale_factor']
    assert w_scale == pytest.approx(1067 / 640) and h_scale == pytest.approx(800 / 480)
    assert out['keep_ratio'] is True
    assert out['gt_bboxes'].dtype == np.float32
    np.testing.assert_allclose(out['gt_bboxes'][0], [10 * 1067 / 640, 20 * 5 / 3, 100 * 1067 / 640, 200 * 5 / 3],
                               rtol=1e-6)
    # the second box reaches past the image (x2 = 650 > 640, y2 = 500 > 480): clipped to 1067 x 800
    np.testing.assert_allclose(out['gt_bboxes'][1], [600 * 1067 / 640, 400 * 5 / 3, 1067, 800], rtol=1e-6)
    tall = Resize(scale=(1333, 800), keep_ratio=True)(dict(img=np.zeros((640, 480, 3), np.uint8)))
    assert tall['img_shape'] == (1067, 800)


def test_resize_fixed_scale_and_no_clip():
    img = np.zeros((480, 640, 3), np.uint8)
    boxes = np.array([[600, 400, 660, 490]], np.float32)
    out = Resize(scale=(320, 120), keep_ratio=False, clip_object_border=False)(dict(img=img, gt_bboxes=boxes))
    assert out['img_shape'] == (120, 320) and out['scale_factor'] == (0.5, 0.25)
    np.testing.assert_allclose(out['gt_bboxes'], [[300, 100, 330, 122.5]])


# ---------------------------------------------------------------- RandomFlip

@pytest.mark.parametrize('direction,expected', [('horizontal', [70, 40, 90, 80]),
                                                ('vertical', [10, 20, 30, 60]),
                                                ('diagonal', [70, 20, 90, 60])])
def test_flip_boxes_by_hand_and_twice_is_identity(direction, expected):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    boxes = np.array([[10, 40, 30, 80]], np.float32)
    flip = RandomFlip(prob=1.0, direction=direction)
    once = flip(dict(img=img.copy(), gt_bboxes=boxes.copy()))
    assert once['flip'] is True and once['flip_direction'] == direction
    np.testing.assert_array_equal(once['gt_bboxes'], [expected])
    assert once['gt_bboxes'].dtype == np.float32
    y, x = 3, 7
    flipped_y = 99 - y if direction in ('vertical', 'diagonal') else y
    flipped_x = 99 - x if direction in ('horizontal', 'diagonal') else x
    np.testing.assert_array_equal(once['img'][flipped_y, flipped_x], img[y, x])
    twice = flip(dict(img=once['img'], gt_bboxes=once['gt_bboxes']))
    np.testing.assert_array_equal(twice['img'], img)
    np.testing.assert_array_equal(twice['gt_bboxes'], boxes)


def test_flip_non_square_and_prob_zero():
    img = np.zeros((50, 200, 3), np.uint8)
    boxes = np.array([[0, 0, 20, 10]], np.float32)
    out = RandomFlip(prob=1.0, direction='diagonal')(dict(img=img, gt_bboxes=boxes))
    np.testing.assert_array_equal(out['gt_bboxes'], [[180, 40, 200, 50]])
    kept = RandomFlip(prob=0.0)(dict(img=img, gt_bboxes=boxes))
    assert kept['flip'] is False and kept['flip_direction'] is None
    np.testing.assert_array_equal(kept['gt_bboxes'], boxes)


# ---------------------------------------------------------------- PackDetInputs

def test_pack_splits_ignored_and_sets_meta():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    results = dict(img=img[:, ::-1], img_id=42, img_path='x.jpg', ori_shape=(2, 3), img_shape=(2, 3),
                   scale_factor=(1.0, 1.0), flip=True, flip_direction='horizontal',
                   gt_bboxes=np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 1, 2, 2]], np.float32),
                   gt_bboxes_labels=np.array([3, 1, 2]), gt_ignore_flags=np.array([False, True, False]))
    packed = PackDetInputs()(results)
    inputs = packed['inputs']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 2, 3) and inputs.is_contiguous()
    np.testing.assert_array_equal(inputs.numpy(), img[:, ::-1].transpose(2, 0, 1))
    sample = packed['data_samples']
    assert sample.gt_instances.bboxes.dtype == torch.float32 and sample.gt_instances.labels.dtype == torch.int64
    assert sample.gt_instances.labels.tolist() == [3, 2]
    assert sample.gt_instances.bboxes.tolist() == [[0, 0, 1, 1], [0, 1, 2, 2]]
    assert sample.ignored_instances.labels.tolist() == [1]
    assert sample.ignored_instances.bboxes.tolist() == [[1, 1, 2, 2]]
    assert sample.img_id == 42 and sample.flip is True and sample.scale_factor == (1.0, 1.0)


def test_pack_without_annotations_or_optional_meta():
    packed = PackDetInputs()(dict(img=np.zeros((4, 5, 3), np.uint8), img_id=1, img_path='y.jpg',
                                  ori_shape=(4, 5), img_shape=(4, 5), scale_factor=(1., 1.)))
    sample = packed['data_samples']
    assert 'gt_instances' not in sample and 'ignored_instances' not in sample
    assert 'flip' not in sample.metainfo and sample.img_shape == (4, 5)


def test_pack_no_ignore_flags_keeps_all_boxes():
    packed = PackDetInputs()(dict(img=np.zeros((4, 5, 3), np.uint8), gt_bboxes=np.zeros((2, 4), np.float32),
                                  gt_bboxes_labels=np.array([0, 1])))
    assert len(packed['data_samples'].gt_instances) == 2 and len(packed['data_samples'].ignored_instances) == 0


# ---------------------------------------------------------------- whole pipeline from config

def test_pipeline_from_config_maps_boxes_consistently(tmp_path):
    img = np.zeros((30, 60, 3), np.uint8)
    img[5:15, 10:30] = 255  # a white object at x 10..30, y 5..15
    cv2.imwrite(str(tmp_path / 'p.png'), img)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(120, 120), keep_ratio=True),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'), dict(type='PackDetInputs')]
    with DefaultScope.overwrite_default_scope('rcnn_plugins'):
        compose = Compose(pipeline)
    assert isinstance(compose.transforms[0], LoadImageFromFile)
    out = compose(dict(img_path=str(tmp_path / 'p.png'), img_id=0,
                       instances=[dict(bbox=[10, 5, 30, 15], bbox_label=0, ignore_flag=0)]))
    sample = out['data_samples']
    assert sample.img_shape == (60, 120) and sample.scale_factor == (2.0, 2.0)
    # scaled x2 -> (20, 10, 60, 30); flipped in a 120-wide image -> (60, 10, 100, 30)
    assert sample.gt_instances.bboxes.tolist() == [[60, 10, 100, 30]]
    x1, y1, x2, y2 = 60, 10, 100, 30
    assert out['inputs'][:, y1 + 2:y2 - 2, x1 + 2:x2 - 2].min() == 255  # the object is where the box is
    assert out['inputs'][:, :, :x1 - 2].max() == 0


def test_test_pipeline_keeps_ground_truth_in_original_pixels(tmp_path):
    """MMDetection's test pipelines load annotations AFTER Resize, so VOCMetric's gt_instances
    are in original-image pixels; 'instances' in meta_keys also carries them for CocoMetric."""
    cv2.imwrite(str(tmp_path / 't.png'), np.zeros((30, 60, 3), np.uint8))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(120, 120), keep_ratio=True),
                dict(type='LoadAnnotations', with_bbox=True),
                dict(type='PackDetInputs', meta_keys=('img_id', 'ori_shape', 'img_shape', 'scale_factor', 'instances'))]
    with DefaultScope.overwrite_default_scope('rcnn_plugins'):
        compose = Compose(pipeline)
    instances = [dict(bbox=[10., 5., 30., 15.], bbox_label=1, ignore_flag=0),
                 dict(bbox=[0., 0., 4., 4.], bbox_label=0, ignore_flag=1)]
    out = compose(dict(img_path=str(tmp_path / 't.png'), img_id=3, instances=instances))
    sample = out['data_samples']
    assert out['inputs'].shape == (3, 60, 120) and sample.scale_factor == (2.0, 2.0)
    assert sample.gt_instances.bboxes.tolist() == [[10, 5, 30, 15]]
    assert sample.ignored_instances.bboxes.tolist() == [[0, 0, 4, 4]]
    assert sample.instances == instances


def test_resize_torch_backend_is_torchvisions_resize():
    """backend='torch': sizes floored (640 * 5/3 = 1066.7 -> 1066, cv2 rounds to 1067), float32
    output equal to torchvision's bilinear resize of the same float image."""
    from torchvision.models.detection.transform import _resize_image_and_masks
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (480, 640, 3)).astype(np.uint8)
    boxes = np.array([[10, 20, 100, 200]], np.float32)
    out = Resize(scale=(1333, 800), keep_ratio=True, backend='torch')(dict(img=img, gt_bboxes=boxes))
    assert out['img'].shape == (800, 1066, 3) and out['img'].dtype == np.float32
    assert out['img_shape'] == (800, 1066) and out['scale_factor'] == (1066 / 640, 800 / 480)
    np.testing.assert_allclose(out['gt_bboxes'][0], [10 * 1066 / 640, 20 * 5 / 3, 100 * 1066 / 640, 200 * 5 / 3],
                               rtol=1e-6)
    expected, _ = _resize_image_and_masks(torch.from_numpy(img).permute(2, 0, 1).float(), 800, 1333)
    assert torch.equal(torch.from_numpy(out['img']).permute(2, 0, 1), expected)
    fixed = Resize(scale=(100, 50), backend='torch')(dict(img=img[..., 0]))
    assert fixed['img'].shape == (50, 100) and fixed['scale_factor'] == (100 / 640, 50 / 480)
    with pytest.raises(ValueError, match="interpolation='bilinear'"):
        Resize(scale=(100, 50), backend='torch', interpolation='nearest')
    with pytest.raises(ValueError, match='backend must be'):
        Resize(scale=(100, 50), backend='opencv')

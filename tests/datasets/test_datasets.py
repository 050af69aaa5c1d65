"""CocoDataset, XMLDataset/VOCDataset, mmengine wrappers and AspectRatioBatchSampler on tiny
datasets written by the fixtures in conftest.py; expected values are worked out by hand from
the records written there."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import ConcatDataset, DefaultSampler, RepeatDataset
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch.utils.data import Sampler

from rcnn_plugins.datasets import (COCO_CLASSES, VOC_CLASSES, AspectRatioBatchSampler, CocoDataset, VOCDataset,
                                   XMLDataset)
from rcnn_plugins.registry import DATA_SAMPLERS, DATASETS

# The tiny datasets leave most classes without annotations; that warning is tested elsewhere.
pytestmark = pytest.mark.filterwarnings('ignore::rcnn_plugins.datasets.errors.DatasetWarning')

CLASSES = ('dog', 'person', 'car')  # json order is person (1), car (3), dog (18)
# mmengine's serialisation runs gc.collect() (~0.5 s per dataset); tests that do not exercise
# it switch it off to stay fast. test_concat_and_repeat_wrappers keeps the default.
FAST = dict(serialize_data=False)
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(128, 96), keep_ratio=True), dict(type='PackDetInputs')]


def coco(coco_dir, **kwargs):
    root, ann = coco_dir
    kwargs.setdefault('metainfo', dict(classes=CLASSES))
    kwargs.setdefault('serialize_data', False)
    return CocoDataset(ann_file=ann, data_root=root, data_prefix=dict(img='images/'), **kwargs)


def test_coco_labels_follow_class_names_and_boxes_convert(coco_dir):
    ds = coco(coco_dir, test_mode=True)
    assert ds.cat_ids == [18, 1, 3]
    assert ds.cat2label == {18: 0, 1: 1, 3: 2}
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == [397133, 5, 12, 7]
    first = ds.get_data_info(0)
    assert first['img_path'] == osp.join(coco_dir[0], 'images', 'a.jpg')
    assert (first['width'], first['height']) == (64, 48)
    assert first['instances'] == [dict(bbox=[4.0, 6.0, 24.0, 16.0], bbox_label=0, ignore_flag=0),
                                  dict(bbox=[30.0, 10.0, 40.0, 40.0], bbox_label=1, ignore_flag=0)]
    second = ds.get_data_info(1)['instances']
    assert second == [dict(bbox=[0.0, 0.0, 40.0, 60.0], bbox_label=2, ignore_flag=1),  # iscrowd
                      dict(bbox=[10.5, 20.25, 16.0, 28.0], bbox_label=0, ignore_flag=0)]
    assert ds.metainfo['classes'] == CLASSES
    assert len(ds.metainfo['palette']) == 3


def test_coco_filters_only_in_training(coco_dir):
    filter_cfg = dict(filter_empty_gt=True, min_size=25)
    train = coco(coco_dir, filter_cfg=filter_cfg)
    # 12 has no annotation, 7 is 30x20 (< 25 on its short side)
    assert [train.get_data_info(i)['img_id'] for i in range(len(train))] == [397133, 5]
    assert len(coco(coco_dir, filter_cfg=filter_cfg, test_mode=True)) == 4
    only_dog = coco(coco_dir, filter_cfg=dict(filter_empty_gt=True), metainfo=dict(classes=('dog',)))
    assert [only_dog.get_data_info(i)['img_id'] for i in range(len(only_dog))] == [397133, 5]
    assert only_dog.get_data_info(0)['instances'] == [dict(bbox=[4.0, 6.0, 24.0, 16.0], bbox_label=0,
                                                           ignore_flag=0)]


def test_coco_default_classes_and_getitem(coco_writer, tmp_path):
    ann = coco_writer(str(tmp_path), [(1, 'x.jpg', 64, 32)],
                      [dict(id=9, image_id=1, category_id=90, bbox=[8, 4, 16, 8])],
                      [(i + 1, name) for i, name in enumerate(COCO_CLASSES[:-1])] + [(90, 'toothbrush')])
    ds = CocoDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'images')), pipeline=PIPELINE,
                     **FAST)
    assert ds.metainfo['classes'] == COCO_CLASSES and len(ds.metainfo['palette']) == 80
    assert ds.cat2label[90] == 79
    item = ds[0]
    assert item['inputs'].shape == (3, 64, 128) and item['inputs'].dtype == torch.uint8
    sample = item['data_samples']
    assert sample.scale_factor == (2.0, 2.0)
    torch.testing.assert_close(sample.gt_instances.bboxes, torch.tensor([[16., 8., 48., 24.]]))
    assert sample.gt_instances.labels.tolist() == [79]
    assert sample.img_id == 1 and sample.ori_shape == (32, 64)


def test_build_from_config_in_scope(coco_dir):
    root, ann = coco_dir
    cfg = dict(type='CocoDataset', ann_file=ann, data_root=root, data_prefix=dict(img='images/'),
               metainfo=dict(classes=CLASSES), test_mode=True, pipeline=PIPELINE)
    with DefaultScope.overwrite_default_scope('rcnn_plugins'):
        ds = DATASETS.build(cfg)
    assert isinstance(ds, CocoDataset) and len(ds) == 4


def test_voc_parses_xml(voc_dir):
    ds = VOCDataset(data_root=voc_dir, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                    data_prefix=dict(sub_data_root='VOC2007/'), test_mode=True, **FAST)
    assert ds.metainfo['classes'] == VOC_CLASSES and ds.metainfo['dataset_type'] == 'VOC2007'
    assert len(ds) == 3
    info = ds.get_data_info(0)
    assert info['img_id'] == '000001' and (info['width'], info['height']) == (50, 40)
    assert info['img_path'] == osp.join(voc_dir, 'VOC2007', 'JPEGImages', '000001.jpg')
    # VOC 1-based (1, 1, 50, 40) -> MMDetection 3.x subtracts 1 from all four: (0, 0, 49, 39);
    # difficult -> ignore_flag 1; 'unicorn' is not a VOC class and is skipped.
    assert info['instances'] == [
        dict(bbox=[0.0, 0.0, 49.0, 39.0], bbox_label=VOC_CLASSES.index('dog'), ignore_flag=0),
        dict(bbox=[10.0, 20.0, 19.0, 29.0], bbox_label=VOC_CLASSES.index('person'), ignore_flag=1)]
    assert ds.get_data_info(1)['instances'] == [dict(bbox=[2.0, 3.0, 12.0, 23.0],
                                                     bbox_label=VOC_CLASSES.index('car'), ignore_flag=0)]


def test_voc_filters_and_dataset_type(voc_writer, tmp_path):
    sub = tmp_path / 'VOC2012'
    voc_writer(str(sub), 'train', [('a', 60, 50, [('car', 1, 1, 11, 41, 0), ('car', 21, 1, 51, 41, 0)]),
                                   ('b', 60, 50, [])])
    ds = VOCDataset(data_root=str(tmp_path), ann_file='VOC2012/ImageSets/Main/train.txt',
                    data_prefix=dict(sub_data_root='VOC2012/'),
                    filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=20), **FAST)
    assert ds.metainfo['dataset_type'] == 'VOC2012'
    assert len(ds) == 1  # 'b' has no object
    # widths 10 and 30: only the first is below bbox_min_size and becomes ignored
    assert [inst['ignore_flag'] for inst in ds.get_data_info(0)['instances']] == [1, 0]
    other = VOCDataset(data_root=str(tmp_path), ann_file='VOC2012/ImageSets/Main/train.txt',
                       data_prefix=dict(sub_data_root='VOC2012/'), test_mode=True, **FAST)
    assert len(other) == 2 and [i['ignore_flag'] for i in other.get_data_info(0)['instances']] == [0, 0]


def test_xml_dataset_custom_classes_and_size_from_image(voc_writer, tmp_path):
    voc_writer(str(tmp_path / 'data'), 'val', [('img1', 36, 24, [('screw', 2, 3, 12, 13, 0), ('nut', 5, 5, 9, 9, 0)])],
               with_size=False)
    ds = XMLDataset(data_root=str(tmp_path / 'data'), ann_file='ImageSets/Main/val.txt',
                    metainfo=dict(classes=('nut', 'screw')), test_mode=True, **FAST)
    info = ds.get_data_info(0)
    assert (info['width'], info['height']) == (36, 24)  # read from the image
    assert [(i['bbox'], i['bbox_label']) for i in info['instances']] == [([1.0, 2.0, 11.0, 12.0], 1),
                                                                         ([4.0, 4.0, 8.0, 8.0], 0)]


def test_concat_and_repeat_wrappers(coco_dir, voc_dir):
    coco_ds = coco(coco_dir, test_mode=True, serialize_data=True)
    xml_ds = XMLDataset(data_root=voc_dir, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                        data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=CLASSES),
                        test_mode=True, pipeline=PIPELINE)
    coco_ds_piped = coco(coco_dir, test_mode=True, pipeline=PIPELINE, serialize_data=True)
    both = ConcatDataset([coco_ds_piped, xml_ds])
    assert len(both) == len(coco_ds) + 3 == 7
    assert both.metainfo['classes'] == CLASSES
    last = both[6]['data_samples']  # 000003 of the XML dataset
    assert last.img_id == '000003' and len(last.gt_instances) == 0
    # 000002: car (3, 4, 13, 24) -> (2, 3, 12, 23); the 30x60 image is limited by its long edge: 60 -> 128
    # (128/60 < 96/30), so it becomes 64x128
    car = both[5]['data_samples']
    assert car.gt_instances.labels.tolist() == [2] and car.img_shape == (128, 64)
    expected = torch.tensor([[2 * 64 / 30, 3 * 128 / 60, 12 * 64 / 30, 23 * 128 / 60]])
    torch.testing.assert_close(car.gt_instances.bboxes, expected)
    assert both[0]['data_samples'].img_id == 397133
    repeated = RepeatDataset(coco_ds, times=3)
    assert len(repeated) == 12
    assert repeated.get_data_info(9)['img_id'] == coco_ds.get_data_info(1)['img_id']


@pytest.mark.parametrize('drop_last', [False, True])
def test_aspect_ratio_batch_sampler(coco_writer, tmp_path, drop_last):
    # 13 wide and 10 tall images: with batches of 4 both orientations leave a remainder (1 and 2).
    rng = np.random.default_rng(0)
    sizes = [(int(w), int(h)) for w, h in rng.integers(20, 60, size=(23, 2))]
    sizes = [(max(w, h) + 1, min(w, h)) if i < 13 else (min(w, h), max(w, h) + 1) for i, (w, h) in enumerate(sizes)]
    images = [(i, f'{i}.jpg', w, h) for i, (w, h) in enumerate(sizes)]
    ann = coco_writer(str(tmp_path), images, [], [(1, 'thing')])
    ds = CocoDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'images')),
                     metainfo=dict(classes=('thing',)), test_mode=True, **FAST)
    sampler = DefaultSampler(ds, shuffle=True, seed=1)
    batch_sampler = DATA_SAMPLERS.build(dict(type='AspectRatioBatchSampler', sampler=sampler, batch_size=4,
                                             drop_last=drop_last))
    assert isinstance(batch_sampler, AspectRatioBatchSampler)
    batches = list(batch_sampler)
    assert len(batches) == len(batch_sampler)
    tall = {i for i, (w, h) in enumerate(sizes) if w < h}
    num_tall = len(tall)
    assert num_tall == 10
    mixed = [b for b in batches if len({i in tall for i in b}) > 1]
    # Full buckets come out first, one orientation each; only the merged remainders may mix.
    assert len(mixed) <= 1 and all(b is batches[-1] or len(b) == 4 for b in mixed)
    assert all(len({i in tall for i in b}) == 1 for b in batches[:-2])
    seen = sorted(i for batch in batches for i in batch)
    assert len(set(seen)) == len(seen)
    # Without drop_last the batch count depends only on the sample count, never on the orientation
    # mix, so every rank of a multi-process run takes the same number of steps (else DDP deadlocks).
    # Here the remainders (1 + 2 = 3) are dropped with drop_last: 23 // 4 batches.
    if drop_last:
        assert all(len(b) == 4 for b in batches) and not mixed
        assert len(batches) == 23 // 4
    else:
        assert seen == list(range(23))  # every index exactly once
        assert len(batches) == -(-23 // 4)


class _SizedDataset:
    """Stand-in dataset: only the image sizes (width, height) the sampler reads."""

    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def get_data_info(self, idx):
        return dict(width=self.sizes[idx][0], height=self.sizes[idx][1])


class _InOrder(Sampler):
    """Indices 0..N-1 in order, so the batches can be worked out by hand."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return iter(range(len(self.dataset)))

    def __len__(self):
        return len(self.dataset)


def test_aspect_ratio_batch_sampler_drop_last_never_mixes():
    """MMDetection's rule: 2 tall + 98 wide, batch size 5 -> 19 wide batches (95 images); the merged
    remainder, 3 wide + 2 tall = exactly 5, is dropped (it would mix) rather than yielded as a 20th."""
    sizes = [(30, 60)] * 2 + [(60, 30)] * 98
    dataset = _SizedDataset(sizes)
    batches = list(AspectRatioBatchSampler(_InOrder(dataset), batch_size=5, drop_last=True))
    assert len(batches) == 19
    assert all(len(b) == 5 and all(i >= 2 for i in b) for b in batches)
    kept = list(AspectRatioBatchSampler(_InOrder(dataset), batch_size=5, drop_last=False))
    assert len(kept) == 20 and sorted(kept[-1]) == [0, 1, 97, 98, 99]


def test_runner_builds_dataloader_with_aspect_ratio_batches(coco_dir):
    root, ann = coco_dir
    cfg = dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
               batch_sampler=dict(type='AspectRatioBatchSampler'),
               dataset=dict(type='CocoDataset', ann_file=ann, data_root=root, data_prefix=dict(img='images/'),
                            metainfo=dict(classes=CLASSES), filter_cfg=dict(filter_empty_gt=False),
                            serialize_data=False, pipeline=PIPELINE))
    with DefaultScope.overwrite_default_scope('rcnn_plugins'):
        loader = Runner.build_dataloader(cfg, seed=0)
    batches = list(loader)
    # wide: 397133 (64x48), 12 (50x50), 7 (30x20); tall: 5 (40x60) -> one full wide batch, then
    # the wide and the tall remainder merged into the last batch
    assert [len(b['inputs']) for b in batches] == [2, 2]
    shapes = [sample.ori_shape for sample in batches[0]['data_samples']]
    assert len({h > w for h, w in shapes}) == 1
    for batch in batches:
        assert all(x.dtype == torch.uint8 and x.shape[0] == 3 for x in batch['inputs'])


def test_xml_uses_filename_when_id_jpg_is_absent(voc_writer, tmp_path):
    voc_writer(str(tmp_path), 'all', [('p1', 20, 10, [('dot', 2, 2, 6, 6, 0)])], write_images=False)
    xml = tmp_path / 'Annotations' / 'p1.xml'
    xml.write_text(xml.read_text().replace('p1.jpg', 'p1.png'))
    (tmp_path / 'JPEGImages').mkdir()
    cv2.imwrite(str(tmp_path / 'JPEGImages' / 'p1.png'), np.zeros((10, 20, 3), np.uint8))
    ds = XMLDataset(data_root=str(tmp_path), ann_file='ImageSets/Main/all.txt', metainfo=dict(classes=('dot',)),
                    test_mode=True, **FAST)
    assert ds.get_data_info(0)['img_path'] == osp.join(str(tmp_path), 'JPEGImages', 'p1.png')

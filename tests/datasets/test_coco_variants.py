"""COCO-format datasets of the zoo on small files written here: Objects365 v1/v2 (class names,
v2's patch layout and missing images), V3Det (class list file), Cityscapes (crowd-only images
filtered)."""
import os.path as osp

import cv2
import numpy as np
import pytest

from rcnn_plugins.datasets import (CityscapesDataset, DatasetError, Objects365V1Dataset, Objects365V2Dataset,
                                   V3DetDataset)


def test_objects365_v1_and_v2(tmp_path, coco_writer):
    assert len(Objects365V1Dataset.METAINFO['classes']) == 365 == len(Objects365V2Dataset.METAINFO['classes'])
    assert Objects365V1Dataset.METAINFO['classes'][:2] == ('person', 'sneakers')
    assert Objects365V2Dataset.METAINFO['classes'][:2] == ('Person', 'Sneakers')
    # v1: categories listed out of id order (as the v1 val file does): labels follow names.
    root = tmp_path / 'v1'
    v1 = Objects365V1Dataset.METAINFO['classes']
    cats = [(i + 1, n) for i, n in enumerate(v1)][::-1]
    coco_writer(str(root), [(1, 'a.jpg', 32, 32)],
                [dict(id=1, image_id=1, category_id=2, bbox=[1, 1, 8, 8])], cats)
    ds = Objects365V1Dataset(data_root=str(root), ann_file='annotations/instances.json',
                             data_prefix=dict(img='images/'), pipeline=[])
    assert ds[0]['instances'][0]['bbox_label'] == 1
    # v2: file_name 'images/v1/patch6/x.jpg' is read as 'patch6/x.jpg'; a known-missing image is left out.
    root = tmp_path / 'v2'
    images = [(1, 'images/v1/patch6/objects365_v1_00000001.jpg', 32, 32),
              (2, 'images/v1/patch6/objects365_v1_00320532.jpg', 32, 32)]
    v2 = Objects365V2Dataset.METAINFO['classes']
    coco_writer(str(root), images, [dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 8, 8])],
                [(i + 1, n) for i, n in enumerate(v2)], write_images=False)
    img = root / 'train' / 'patch6' / 'objects365_v1_00000001.jpg'
    img.parent.mkdir(parents=True)
    cv2.imwrite(str(img), np.zeros((32, 32, 3), np.uint8))
    ds = Objects365V2Dataset(data_root=str(root), ann_file='annotations/instances.json',
                             data_prefix=dict(img='train/'), pipeline=[])
    assert len(ds) == 1 and ds[0]['img_path'] == osp.join(str(root), 'train', 'patch6', 'objects365_v1_00000001.jpg')


def test_v3det_class_file(tmp_path, coco_writer):
    coco_writer(str(tmp_path), [(1, 'a.jpg', 32, 32)],
                [dict(id=1, image_id=1, category_id=7, bbox=[1, 1, 8, 8])], [(5, 'n001'), (7, 'n002')])
    (tmp_path / 'annotations' / 'names.txt').write_text('n001\nn002\n')
    ds = V3DetDataset(data_root=str(tmp_path), ann_file='annotations/instances.json', label_file='annotations/names.txt',
                      data_prefix=dict(img='images/'), pipeline=[])
    assert ds.metainfo['classes'] == ('n001', 'n002') and ds[0]['instances'][0]['bbox_label'] == 1
    with pytest.raises(DatasetError, match='class list'):
        V3DetDataset(data_root=str(tmp_path), ann_file='annotations/instances.json', label_file='nope.txt')


def test_cityscapes_drops_crowd_only_images(tmp_path, coco_writer):
    coco_writer(str(tmp_path), [(1, 'a.png', 32, 32), (2, 'b.png', 32, 32), (3, 'c.png', 32, 32)],
                [dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 8, 8]),
                 dict(id=2, image_id=2, category_id=3, bbox=[1, 1, 8, 8], iscrowd=1)],  # person; crowd of cars
                [(i + 1, n) for i, n in enumerate(CityscapesDataset.METAINFO['classes'])])
    kw = dict(data_root=str(tmp_path), ann_file='annotations/instances.json', data_prefix=dict(img='images/'),
              pipeline=[], filter_cfg=dict(filter_empty_gt=True))
    ds = CityscapesDataset(**kw)
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == [1]   # b: crowd only, c: nothing
    assert ds[0]['instances'][0]['bbox_label'] == 0
    assert len(CityscapesDataset(**dict(kw, filter_cfg=None))) == 3

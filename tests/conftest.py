"""Shared fixtures: tiny COCO-style and VOC-style datasets written to tmp dirs.

Images are drawn with numpy (a flat colour per image plus a rectangle, so corruption or a
wrong orientation shows) and written with cv2; annotation files are written by hand. Nothing
is downloaded.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest


def write_image(path: str, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Write a (height, width, 3) uint8 BGR image to ``path`` (format from the extension)."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = rng.integers(0, 256, size=3, dtype=np.uint8)
    img[height // 4: height // 2, width // 4: width // 2] = 255 - img[0, 0]
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)
    return img


def write_coco(root: str, images, annotations, categories, ann_name='annotations/instances.json',
               img_dir='images', write_images=True) -> str:
    """Write a COCO json (and the images it lists) under ``root``; return the json path.

    ``images``: list of (id, file_name, width, height); ``annotations``: COCO annotation dicts
    (``area`` defaults to w * h, ``iscrowd`` to 0); ``categories``: list of (id, name).
    """
    anns = []
    for ann in annotations:
        ann = dict(ann)
        if 'area' not in ann:
            ann['area'] = ann['bbox'][2] * ann['bbox'][3]
        ann.setdefault('iscrowd', 0)
        anns.append(ann)
    data = dict(images=[dict(id=i, file_name=f, width=w, height=h) for i, f, w, h in images],
                annotations=anns, categories=[dict(id=i, name=n) for i, n in categories])
    path = osp.join(root, ann_name)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)
    if write_images:
        for k, (_, file_name, w, h) in enumerate(images):
            write_image(osp.join(root, img_dir, file_name), w, h, seed=k)
    return path


def write_voc(sub_root: str, split: str, records, write_images=True, with_size=True) -> str:
    """Write a VOC-layout split under ``sub_root`` (e.g. ``.../VOC2007``); return the list file.

    ``records``: list of (img_id, width, height, objects) with objects as
    (name, xmin, ymin, xmax, ymax, difficult), VOC 1-based pixel coordinates.
    """
    os.makedirs(osp.join(sub_root, 'ImageSets', 'Main'), exist_ok=True)
    os.makedirs(osp.join(sub_root, 'Annotations'), exist_ok=True)
    for k, (img_id, w, h, objects) in enumerate(records):
        objs = ''.join(
            f'<object><name>{name}</name><difficult>{diff}</difficult><bndbox><xmin>{x1}</xmin>'
            f'<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>'
            for name, x1, y1, x2, y2, diff in objects)
        size = f'<size><width>{w}</width><height>{h}</height><depth>3</depth></size>' if with_size else ''
        with open(osp.join(sub_root, 'Annotations', f'{img_id}.xml'), 'w') as f:
            f.write(f'<annotation><filename>{img_id}.jpg</filename>{size}{objs}</annotation>')
        if write_images:
            write_image(osp.join(sub_root, 'JPEGImages', f'{img_id}.jpg'), w, h, seed=k)
    list_file = osp.join(sub_root, 'ImageSets', 'Main', f'{split}.txt')
    with open(list_file, 'w') as f:
        f.write('\n'.join(r[0] for r in records) + '\n')
    return list_file


@pytest.fixture
def coco_writer():
    """The ``write_coco`` helper, for tests that build their own COCO files."""
    return write_coco


@pytest.fixture
def voc_writer():
    """The ``write_voc`` helper, for tests that build their own VOC folders."""
    return write_voc


#: The standard small COCO set: non-contiguous category ids, one crowd box, one image without
#: annotations, one small (min side 20 px) image, one tall image.
COCO_IMAGES = [(397133, 'a.jpg', 64, 48), (5, 'b.jpg', 40, 60), (12, 'c.jpg', 50, 50), (7, 'small.jpg', 30, 20)]
COCO_CATEGORIES = [(1, 'person'), (3, 'car'), (18, 'dog')]
COCO_ANNOTATIONS = [
    dict(id=1, image_id=397133, category_id=18, bbox=[4, 6, 20, 10]),
    dict(id=2, image_id=397133, category_id=1, bbox=[30, 10, 10, 30]),
    dict(id=3, image_id=5, category_id=3, bbox=[0, 0, 40, 60], iscrowd=1),
    dict(id=4, image_id=5, category_id=18, bbox=[10.5, 20.25, 5.5, 7.75]),
    dict(id=5, image_id=7, category_id=1, bbox=[2, 2, 10, 10]),
]


@pytest.fixture
def coco_dir(tmp_path):
    """(data_root, ann_file relative to it) of the standard small COCO set, images in images/."""
    write_coco(str(tmp_path), COCO_IMAGES, COCO_ANNOTATIONS, COCO_CATEGORIES)
    return str(tmp_path), 'annotations/instances.json'


@pytest.fixture
def voc_dir(tmp_path):
    """data_root of a VOCdevkit-like tree with VOC2007/ImageSets/Main/trainval.txt (3 images)."""
    root = tmp_path / 'VOCdevkit'
    write_voc(str(root / 'VOC2007'), 'trainval', [
        ('000001', 50, 40, [('dog', 1, 1, 50, 40, 0), ('person', 11, 21, 20, 30, 1), ('unicorn', 5, 5, 9, 9, 0)]),
        ('000002', 30, 60, [('car', 3, 4, 13, 24, 0)]),
        ('000003', 40, 40, []),
    ])
    return str(root)

"""Every row of the bad-input table in docs/PROMISES.md, tried for real.

Each case builds the bad input in a tmp dir, feeds it to the entry point a user would hit
(``LoadImageFromFile``, a dataset, ``inference_detector``, ``tools/train.py``'s code) and returns
what the user sees: the error or warning message, or ``None`` when the input simply works. The
test checks the message (one line, naming the file / record / key and the fix).
"""
import json
import os
import os.path as osp
import re
import struct
import subprocess
import sys
import warnings
import zlib

import cv2
import numpy as np
import pytest
import torch

from rcnn_plugins import cli
from rcnn_plugins.datasets import CocoDataset, DatasetError, DatasetWarning, VOCDataset
from rcnn_plugins.datasets.transforms import LoadImageFromFile
from rcnn_plugins.fileio.safe_load import CheckpointFileError
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
CATS = [(1, 'cat'), (2, 'dog')]


def seen(action):
    """What the user sees from ``action()``: the DatasetError / SystemExit / KeyError message, the
    DatasetWarnings joined, or None when it just works."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            action()
        except (DatasetError, KeyError) as err:
            return str(err.args[0])
        except CheckpointFileError as err:
            return str(err)
        except SystemExit as err:
            return str(err)
    messages = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    return ' | '.join(messages) or None


def encoded(ext, width=40, height=30):
    img = np.full((height, width, 3), 90, np.uint8)
    img[5:15, 5:25] = 200
    return cv2.imencode(ext, img)[1].tobytes()


def load_file(path):
    return LoadImageFromFile()(dict(img_path=str(path)))


# ---- images --------------------------------------------------------------------------------------

def corrupt_jpeg(tmp):
    path = tmp / 'corrupt.jpg'
    path.write_bytes(b'\xff\xd8\xff\xe0' + b'garbage' * 50 + b'\xff\xd9')
    return seen(lambda: load_file(path))


def truncated_jpeg(tmp):
    data = encoded('.jpg')
    path = tmp / 'truncated.jpg'
    path.write_bytes(data[:len(data) // 2])
    return seen(lambda: load_file(path))


def corrupt_png(tmp):
    data = encoded('.png')
    path = tmp / 'corrupt.png'
    path.write_bytes(data[:33] + b'\x00' * (len(data) - 45) + data[-12:])  # IHDR and IEND kept
    return seen(lambda: load_file(path))


def truncated_png(tmp):
    data = encoded('.png')
    path = tmp / 'truncated.png'
    path.write_bytes(data[:len(data) // 2])
    return seen(lambda: load_file(path))


def zero_byte_file(tmp):
    path = tmp / 'empty.jpg'
    path.write_bytes(b'')
    return seen(lambda: load_file(path))


def path_is_a_directory(tmp):
    os.makedirs(tmp / 'folder.jpg')
    return seen(lambda: load_file(tmp / 'folder.jpg'))


def unicode_and_spaces_in_paths(tmp):
    """Works: an image and a COCO dataset under 'données d'été/图像 1/'."""
    root = tmp / "données d'été" / '图像 1'
    os.makedirs(root / 'images')
    (root / 'images' / 'chat noir 1.jpg').write_bytes(encoded('.jpg', 40, 30))
    ann = root / 'ann s.json'
    ann.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='chat noir 1.jpg', width=40, height=30)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[2, 2, 10, 10], area=100, iscrowd=0)],
        categories=[dict(id=1, name='cat')])), encoding='utf-8')

    def run():
        assert load_file(root / 'images' / 'chat noir 1.jpg')['img'].shape == (30, 40, 3)
        ds = CocoDataset(ann_file=str(ann), data_prefix=dict(img=str(root / 'images')), metainfo=dict(classes=('cat',)),
                         pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                                   dict(type='PackDetInputs')])
        assert ds[0]['inputs'].shape == (3, 30, 40)
    return seen(run)


def one_pixel_image(tmp):
    """Works: a 1x1 image goes through the demo model's test pipeline and inference."""
    from rcnn_plugins.apis import inference_detector, init_detector
    path = tmp / 'one.png'
    cv2.imwrite(str(path), np.full((1, 1, 3), 128, np.uint8))

    def run():
        result = inference_detector(init_detector(DEMO, cfg_options={'model.test_cfg.rcnn.score_thr': 0.0}), str(path))
        boxes = result.pred_instances.bboxes
        assert result.ori_shape == (1, 1) and len(boxes) > 0
        assert float(boxes.min()) >= 0 and float(boxes.max()) <= 1
    return seen(run)


def _png_header(width, height):
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack('>I', 13) + b'IHDR' + ihdr + struct.pack('>I', zlib.crc32(b'IHDR' + ihdr))
    return b'\x89PNG\r\n\x1a\n' + chunk


def huge_png(tmp):
    """A 20000x20000 PNG header (1.2 GB decoded): refused from the header, nothing decoded."""
    path = tmp / 'huge.png'
    data = encoded('.png')
    path.write_bytes(_png_header(20000, 20000) + data[33:])
    return seen(lambda: load_file(path))


def huge_jpeg(tmp):
    data = bytearray(encoded('.jpg'))
    sof = data.find(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', 20000, 20000)
    path = tmp / 'huge.jpg'
    path.write_bytes(bytes(data))
    return seen(lambda: load_file(path))


# ---- annotations ---------------------------------------------------------------------------------

def coco_dataset(tmp, annotations, images=((1, 'a.jpg', 40, 30), ), categories=CATS, raw=None, **kwargs):
    from conftest import write_coco
    ann = write_coco(str(tmp), list(images), annotations, categories)
    if raw is not None:
        with open(ann, 'w') as f:
            f.write(raw)
    kwargs.setdefault('metainfo', dict(classes=('cat', 'dog')))
    return lambda: CocoDataset(ann_file=ann, data_prefix=dict(img=osp.join(str(tmp), 'images')), **kwargs)


def nan_box(tmp):
    return seen(coco_dataset(tmp, [dict(id=7, image_id=1, category_id=1, bbox=[float('nan'), 1, 5, 5], area=25)]))


def inf_box(tmp):
    return seen(coco_dataset(tmp, [dict(id=8, image_id=1, category_id=1, bbox=[1, 1, float('inf'), 5], area=25)]))


def x2_less_than_x1_coco(tmp):
    return seen(coco_dataset(tmp, [dict(id=3, image_id=1, category_id=1, bbox=[20, 1, -8, 5], area=40),
                                   dict(id=4, image_id=1, category_id=1, bbox=[1, 1, 5, 5])]))


def voc(tmp, objects_xml):
    from conftest import write_voc
    sub = tmp / 'VOC2007'
    write_voc(str(sub), 'test', [('a', 40, 30, [])])
    (sub / 'Annotations' / 'a.xml').write_text(
        f'<annotation><size><width>40</width><height>30</height></size>{objects_xml}</annotation>')
    return lambda: VOCDataset(data_root=str(tmp), ann_file='VOC2007/ImageSets/Main/test.txt',
                              data_prefix=dict(sub_data_root='VOC2007/'), test_mode=True)


def x2_less_than_x1_voc(tmp):
    return seen(voc(tmp, '<object><name>dog</name><bndbox><xmin>20</xmin><ymin>2</ymin><xmax>9</xmax>'
                         '<ymax>9</ymax></bndbox></object>'))


def nan_box_voc(tmp):
    return seen(voc(tmp, '<object><name>dog</name><bndbox><xmin>nan</xmin><ymin>2</ymin><xmax>9</xmax>'
                         '<ymax>9</ymax></bndbox></object>'))


def voc_missing_bndbox(tmp):
    return seen(voc(tmp, '<object><name>dog</name><difficult>0</difficult></object>'))


def negative_category_id(tmp):
    return seen(coco_dataset(tmp, [dict(id=5, image_id=1, category_id=-1, bbox=[1, 1, 5, 5])]))


def out_of_range_category_id(tmp):
    return seen(coco_dataset(tmp, [dict(id=6, image_id=1, category_id=91, bbox=[1, 1, 5, 5])]))


def empty_annotation_list(tmp):
    return seen(coco_dataset(tmp, [], filter_cfg=dict(filter_empty_gt=True)))


def annotation_not_json(tmp):
    return seen(coco_dataset(tmp, [], raw='images: [a.jpg]\nannotations: []\n'))


def truncated_json(tmp):
    good = json.dumps(dict(images=[dict(id=1, file_name='a.jpg', width=40, height=30)], annotations=[],
                           categories=[dict(id=1, name='cat')]), indent=1)
    return seen(coco_dataset(tmp, [], raw=good[:len(good) // 2]))


# ---- checkpoints ---------------------------------------------------------------------------------

def _checkpoint(tmp, data):
    import torch
    from mmengine.runner.checkpoint import _load_checkpoint  # what the Runner and init_detector call
    good = tmp / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(5000)}, 'meta': {}}, str(good))
    path = tmp / 'bad.pth'
    path.write_bytes(data(good.read_bytes()))
    return seen(lambda: _load_checkpoint(str(path), map_location='cpu'))


def truncated_checkpoint(tmp):
    return _checkpoint(tmp, lambda b: b[:len(b) // 2])


def zero_byte_checkpoint(tmp):
    return _checkpoint(tmp, lambda b: b'')


def html_page_as_checkpoint(tmp):
    return _checkpoint(tmp, lambda b: b'<html><body>404 Not Found</body></html>')


# ---- config --------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('bad_inputs_data'))
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', root, '--num-train', '2', '--num-val', '2',
                    '--min-size', '64', '--max-size', '64'], cwd=REPO, check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=REPO))
    options = [f'{split}_dataloader.dataset.data_root={root}/' for split in ('train', 'val', 'test')]
    return options + [f'{split}_evaluator.ann_file={root}/annotations/val.json' for split in ('val', 'test')]


def train_with(tmp, demo_data, *options):
    return seen(lambda: cli.train_main([DEMO, '--work-dir', str(tmp / 'work'), '--cfg-options', *demo_data,
                                        'train_cfg.max_epochs=1', f'experiment_name=bad_{tmp.name}', *options]))


def num_classes_mismatch(tmp, demo_data):
    return train_with(tmp, demo_data, 'model.roi_head.bbox_head.num_classes=80')


def unknown_registry_type(tmp, demo_data):
    return train_with(tmp, demo_data, 'model.neck.type=FPNN')


def unknown_transform_type(tmp, demo_data):
    return train_with(tmp, demo_data, 'train_dataloader.dataset.pipeline.2.type=Resise')


def typo_in_cfg_options(tmp, demo_data):
    return train_with(tmp, demo_data, 'model.backbone.dept=50')


def typo_in_cfg_options_hook(tmp, demo_data):
    return train_with(tmp, demo_data, 'default_hooks.chekpoint.interval=2')


# (case, what the user sees: regexes that must all match; None = works)
CASES = [
    (corrupt_jpeg, [r'cannot decode image file \S+corrupt\.jpg: corrupt JPEG data', 're-export or remove it']),
    (truncated_jpeg, [r'truncated\.jpg: truncated JPEG \(no end-of-image marker after \d+ bytes\)']),
    (corrupt_png, [r'corrupt\.png: corrupt PNG data']),
    (truncated_png, [r'truncated\.png: truncated PNG \(no IEND chunk']),
    (zero_byte_file, [r'empty\.jpg: the file is empty \(0 bytes\)']),
    (path_is_a_directory, [r'cannot read image file \S+folder\.jpg: .*Is a directory', 'check data_root']),
    (unicode_and_spaces_in_paths, None),
    (one_pixel_image, None),
    (huge_png, [r'huge\.png is 20000x20000 pixels \(400 M\)', r'max_pixels=150000000', 'downscale or tile it']),
    (huge_jpeg, [r'huge\.jpg is 20000x20000 pixels']),
    (nan_box, [r'1 annotations have a bbox that is not 4 finite numbers', r'ann id 7: \[nan, 1, 5, 5\]']),
    (inf_box, [r'ann id 8: \[1, 1, inf, 5\]']),
    (x2_less_than_x1_coco, [r'dropped 1 boxes: 1 with width or height < 1 px \(ann id 3 \(image 1\)\)']),
    (x2_less_than_x1_voc, [r'dropped 1 boxes: 1 with zero or negative width or height \(\S+a\.xml object #0\)']),
    (nan_box_voc, [r'a\.xml object #0: <bndbox> needs finite numeric xmin, ymin, xmax, ymax']),
    (voc_missing_bndbox, [r'a\.xml object #0: <bndbox> needs finite numeric']),
    (negative_category_id, [r'1 annotations use a category_id that "categories" does not', 'ann id 5']),
    (out_of_range_category_id, [r'category_id that "categories" does not', 'ann id 6']),
    (empty_annotation_list, [r'no image left after filtering 1 images: filter_empty_gt=True removed 1']),
    (annotation_not_json, [r'instances\.json is not valid json: .* at line 1, column 1', 'fix or re-export']),
    (truncated_json, [r'instances\.json is not valid json: .* at line \d+']),
    (truncated_checkpoint, [r'bad\.pth is not a readable torch checkpoint \(.+\): it is truncated',
                            'Download or save it again']),
    (zero_byte_checkpoint, [r'bad\.pth is not a readable torch checkpoint', 'truncated, empty']),
    (html_page_as_checkpoint, [r'bad\.pth is not a readable torch checkpoint \(.*\d+\)', 'HTML error page']),
]
CONFIG_CASES = [
    (num_classes_mismatch, [r'model\.roi_head\.bbox_head\.num_classes is 80 but the train dataset \(\S+train\.json\) '
                            r'has 4 classes \(rectangle, ellipse, triangle, cross\): set '
                            r'model\.roi_head\.bbox_head\.num_classes=4']),
    (unknown_registry_type, [r"type='FPNN' is not a registered model \(scope rcnn_plugins\): did you mean 'FPN'\?"]),
    (unknown_transform_type, [r"type='Resise' is not a registered transform .*did you mean 'Resize'"]),
    (typo_in_cfg_options, [r'--cfg-options model\.backbone\.dept: the config has no model\.backbone\.dept; '
                           r'did you mean model\.backbone\.depth\?']),
    (typo_in_cfg_options_hook, [r'did you mean default_hooks\.checkpoint\?']),
]


def check(message, expected):
    if expected is None:
        assert message is None, message
        return
    assert message is not None, 'the bad input was accepted silently'
    assert '\n' not in message, f'not one line: {message}'
    for pattern in expected:
        assert re.search(pattern, message), f'{pattern!r} not in: {message}'


@pytest.mark.parametrize('case,expected', CASES, ids=[c.__name__ for c, _ in CASES])
def test_bad_input(case, expected, tmp_path):
    check(case(tmp_path), expected)


@pytest.mark.parametrize('case,expected', CONFIG_CASES, ids=[c.__name__ for c, _ in CONFIG_CASES])
def test_bad_config(case, expected, tmp_path, demo_data):
    check(case(tmp_path, demo_data), expected)


def test_huge_image_is_not_decoded(tmp_path, monkeypatch):
    """The refusal happens before any decoder runs (so no 1.2 GB allocation)."""
    import mmcv
    calls = []
    monkeypatch.setattr(mmcv, 'imfrombytes', lambda *a, **k: calls.append(1))
    huge_png(tmp_path)
    assert calls == []


def test_new_cfg_options_keys_still_pass():
    from mmengine.config import Config
    from rcnn_plugins.config_utils import typo_in_override
    cfg = Config.fromfile(DEMO)
    for key in ('default_hooks.checkpoint.max_keep_ckpts', 'model.backbone.depth', 'param_scheduler.0.end',
                'experiment_name', 'model.backbone.init_cfg.checkpoint'):
        assert typo_in_override(cfg, key) is None, key


def test_num_class_check_leaves_rpn_heads_and_backbones_alone():
    """An RPN detector's head (``bbox_head``, 1 objectness class) and mmcv's VGG (``num_classes=-1``)
    are not class heads: the check passes them; a real class head with the wrong count fails."""
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from rcnn_plugins.datasets.errors import DatasetError
    from rcnn_plugins.engine.hooks import NumClassCheckHook
    from rcnn_plugins.registry import MODELS
    init_default_scope('rcnn_plugins')
    rpn = MODELS.build(dict(
        type='RPN', backbone=dict(type='VGG', depth=11, out_indices=(3,)), neck=None,
        rpn_head=dict(type='RPNHead', in_channels=512, feat_channels=16,
                      anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[1.0], strides=[16]),
                      bbox_coder=dict(type='DeltaXYWHBBoxCoder')),
        train_cfg=None, test_cfg=dict(rpn=dict(nms_pre=10, max_per_img=10, nms=dict(type='nms', iou_threshold=0.7),
                                               min_bbox_size=0))))
    loader = SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=('a', 'b', 'c')), ann_file='x.json'))
    NumClassCheckHook().before_train(SimpleNamespace(model=rpn, train_dataloader=loader))
    # Any RPN head of a proposal detector is objectness-only (guided anchoring's is no RPNHead subclass).
    ga_cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'guided_anchoring', 'ga-rpn_r18_fpn_demo.py'))
    ga_rpn = MODELS.build(ga_cfg.model)
    assert type(ga_rpn.bbox_head).__name__ == 'GARPNHead' and ga_rpn.bbox_head.num_classes == 1
    NumClassCheckHook().before_train(SimpleNamespace(model=ga_rpn, train_dataloader=loader))
    head = MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8, roi_feat_size=7,
                             num_classes=2))
    model = torch.nn.Module()
    model.roi_head = head
    with pytest.raises(DatasetError, match=r'model\.roi_head\.num_classes is 2 but the train dataset \(x\.json\) has 3'):
        NumClassCheckHook().before_train(SimpleNamespace(model=model, train_dataloader=loader))

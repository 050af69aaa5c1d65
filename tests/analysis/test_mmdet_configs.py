"""check_mmdet_configs on a small MMDetection-style config folder written here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rcnn_plugins.analysis.mmdet_configs import (
    check_configs,
    compare_keys,
    disable_pretrained,
    find_configs,
    format_table,
    keys_file,
    strip_mmdet_only,
    totals,
)

REPO = Path(__file__).resolve().parents[2]

BASE_MODEL = """
model = dict(
    type='FasterRCNN',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0., 0., 0.], std=[1., 1., 1.], bgr_to_rgb=True,
                           pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint='/nonexistent/resnet18.pth')),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=16, num_outs=5),
    rpn_head=dict(
        type='RPNHead', in_channels=16, feat_channels=16,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                out_channels=16, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32, roi_feat_size=7,
                       num_classes=3,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       reg_class_agnostic=False,
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=None,
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
                  rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)))
"""

DATA = """
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='Resize', scale=(64, 64), keep_ratio=True), dict(type='RandomFlip', prob=0.5),
                  dict(type='PackDetInputs')]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(64, 64), keep_ratio=True),
                 dict(type='PackDetInputs')]
train_dataloader = dict(batch_size=1, dataset=dict(type='RepeatDataset', times=2, dataset=dict(
    type='CocoDataset', data_root='/nonexistent/', ann_file='a.json', pipeline=train_pipeline)))
val_dataloader = dict(batch_size=1, dataset=dict(type='CocoDataset', data_root='/nonexistent/', ann_file='a.json',
                                                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file='/nonexistent/a.json', metric='bbox')
test_evaluator = val_evaluator
"""


@pytest.fixture
def config_dir(tmp_path):
    root = tmp_path / 'configs'
    (root / '_base_' / 'models').mkdir(parents=True)
    (root / '_base_' / 'models' / 'faster-rcnn_r18_fpn.py').write_text(BASE_MODEL)
    (root / '_base_' / 'data.py').write_text(DATA)
    (root / 'faster_rcnn').mkdir()
    (root / 'faster_rcnn' / 'good.py').write_text(
        "_base_ = ['../_base_/models/faster-rcnn_r18_fpn.py', '../_base_/data.py']\n")
    # an MMDetection one-stage head: not here
    (root / 'faster_rcnn' / 'unknown_head.py').write_text(
        "_base_ = ['../_base_/models/faster-rcnn_r18_fpn.py', '../_base_/data.py']\n"
        "model = dict(rpn_head=dict(_delete_=True, type='RetinaHead', num_classes=3, in_channels=16))\n")
    # a transform nobody registers (a typo)
    (root / 'faster_rcnn' / 'bad_transform.py').write_text(
        "_base_ = ['../_base_/models/faster-rcnn_r18_fpn.py', '../_base_/data.py']\n"
        "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resizee', scale=(64, 64))]\n"
        "val_dataloader = dict(dataset=dict(pipeline=test_pipeline))\ntest_dataloader = val_dataloader\n")
    # documented: custom_imports of mmpretrain is dropped; anything else is a failure
    (root / 'faster_rcnn' / 'mmpretrain_import.py').write_text(
        "_base_ = ['./good.py']\ncustom_imports = dict(imports=['mmpretrain.models'], "
        "allow_failed_imports=False)\n")
    (root / 'faster_rcnn' / 'other_import.py').write_text(
        "_base_ = ['./good.py']\ncustom_imports = dict(imports=['projects.foo'], allow_failed_imports=False)\n")
    return root


def _keys_dir(tmp_path, config_dir):
    """A keys folder: the good config's real layout (built once here, independently of the checker),
    and a layout for mmpretrain_import with one key renamed and one shape changed."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from rcnn_plugins.registry import MODELS
    init_default_scope('rcnn_plugins')
    model = MODELS.build(Config.fromfile(str(config_dir / 'faster_rcnn' / 'good.py')).model)
    layout = {k: list(v.shape) for k, v in model.state_dict().items()}
    keys = tmp_path / 'keys'
    keys.mkdir()
    (keys / 'faster_rcnn__good.json').write_text(json.dumps(dict(state_dict=layout)))
    changed = dict(layout)
    changed['roi_head.bbox_head.fc_cls.weightX'] = changed.pop('roi_head.bbox_head.fc_cls.weight')
    changed['rpn_head.rpn_conv.bias'] = [17]
    (keys / 'faster_rcnn__mmpretrain_import.json').write_text(json.dumps(dict(state_dict=changed)))
    return keys


def test_rows_and_totals(tmp_path, config_dir):
    keys = _keys_dir(tmp_path, config_dir)
    configs = find_configs(str(config_dir))
    assert configs == ['faster_rcnn/bad_transform.py', 'faster_rcnn/good.py', 'faster_rcnn/mmpretrain_import.py',
                       'faster_rcnn/other_import.py', 'faster_rcnn/unknown_head.py']
    rows = {r['config']: r for r in check_configs(str(config_dir), configs, str(keys), isolate=False)}

    good = rows['faster_rcnn/good.py']
    assert good['model_built'] and good['keys_equal'] is True and good['pipeline_ok'] and good['error'] is None
    assert good['model_class'] == 'FasterRCNN'

    unknown = rows['faster_rcnn/unknown_head.py']
    assert not unknown['model_built'] and unknown['keys_equal'] is None
    assert unknown['error'].startswith('model: KeyError') and 'RetinaHead' in unknown['error']
    assert unknown['pipeline_ok']  # the data part is still checked

    bad = rows['faster_rcnn/bad_transform.py']
    assert bad['model_built'] and bad['keys_equal'] is None  # no keys file for it
    assert not bad['pipeline_ok'] and "'Resizee'" in bad['error'] and bad['error'].startswith('val pipeline')

    mmpretrain = rows['faster_rcnn/mmpretrain_import.py']
    assert mmpretrain['changes'] == ["dropped custom_imports ['mmpretrain.models']"]
    assert mmpretrain['model_built'] and mmpretrain['keys_equal'] is False and mmpretrain['pipeline_ok']
    assert mmpretrain['error'] == ('keys differ: 1 missing (e.g. roi_head.bbox_head.fc_cls.weightX); '
                                   '1 unexpected (e.g. roi_head.bbox_head.fc_cls.weight); '
                                   '1 shape (e.g. rpn_head.rpn_conv.bias ours [16] MMDetection [17])')

    other = rows['faster_rcnn/other_import.py']
    assert not other['loaded'] and not other['model_built']
    assert other['error'].startswith('load: ValueError') and 'projects.foo' in other['error']

    assert totals(list(rows.values())) == dict(configs=5, model_built=3, keys_checked=2, keys_equal=1,
                                               pipeline_ok=3, all_ok=1)
    table = format_table([rows[c] for c in configs]).splitlines()
    assert table[0].split()[:4] == ['config', 'model', 'keys', 'pipeline']
    assert table[2].split() == ['faster_rcnn/good.py', 'yes', 'yes', 'yes']
    assert table[5].split()[:4] == ['faster_rcnn/unknown_head.py', 'NO', '-', 'yes']
    assert table[-1] == ('total 5: model built 3, keys equal 1/2 with a keys file, pipeline ok 3, all checks 1')


def test_isolated_matches_in_process_and_reports_timeout(tmp_path, config_dir):
    configs = ['faster_rcnn/good.py', 'faster_rcnn/unknown_head.py']
    assert check_configs(str(config_dir), configs, isolate=True) == check_configs(str(config_dir), configs,
                                                                                  isolate=False)
    (config_dir / 'faster_rcnn' / 'hang.py').write_text('import time\ntime.sleep(60)\n')
    row, = check_configs(str(config_dir), ['faster_rcnn/hang.py'], isolate=True, timeout=1)
    assert row['error'] == 'timeout after 1 s' and row['model_built'] is False


def test_helpers():
    cfg = {'custom_imports': dict(imports=['mmpretrain.models']), 'model': {}}
    assert strip_mmdet_only(cfg) == ["dropped custom_imports ['mmpretrain.models']"]
    assert cfg == {'model': {}, 'default_scope': 'rcnn_plugins'}
    model = dict(backbone=dict(type='TIMMBackbone', pretrained=True, init_cfg=dict(type='Pretrained')),
                 neck=[dict(pretrained='x.pth')])
    assert disable_pretrained(model) == dict(backbone=dict(type='TIMMBackbone', pretrained=False, init_cfg=None),
                                             neck=[dict(pretrained=None)])
    assert keys_file('/k', 'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py') == \
        '/k/cascade_rcnn__cascade-rcnn_r50_fpn_1x_coco.json'
    import torch
    assert compare_keys({'a': torch.zeros(2, 3)}, {'a': [2, 3]}) is None


def test_tool_exit_status_and_report(tmp_path, config_dir):
    listing = tmp_path / 'list.txt'
    listing.write_text('faster_rcnn/good.py\n\nfaster_rcnn/unknown_head.py\n')
    out = tmp_path / 'report.json'
    run = subprocess.run([sys.executable, str(REPO / 'tools/misc/check_mmdet_configs.py'), str(config_dir),
                          '--list', str(listing), '--out', str(out), '--no-isolate'],
                         capture_output=True, text=True, cwd=REPO, env={'PYTHONPATH': str(REPO), 'OMP_NUM_THREADS': '1',
                                                                       'PATH': '/usr/bin:/bin'})
    assert run.returncode == 1, run.stderr
    report = json.loads(out.read_text())
    assert report['totals'] == dict(configs=2, model_built=1, keys_checked=0, keys_equal=0, pipeline_ok=2,
                                    all_ok=1)
    assert [r['config'] for r in report['rows']] == ['faster_rcnn/good.py', 'faster_rcnn/unknown_head.py']
    assert 'total 2: model built 1' in run.stdout

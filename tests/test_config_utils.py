"""rcnn_plugins.config_utils: the one way configs are read (overrides checked, test pipeline through
wrappers, leaf datasets, num_classes), against configs written here by hand."""
import pytest
from mmengine.config import Config

from rcnn_plugins.config_utils import (ConfigError, leaf_datasets, load_config, merge_overrides, num_classes,
                                       get_test_pipeline_cfg)

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True), dict(type='PackDetInputs')]


def leaf(name, pipeline=None):
    return dict(type='CocoDataset', ann_file=f'{name}.json', pipeline=pipeline if pipeline is not None else PIPELINE)


@pytest.mark.parametrize('dataset', [
    leaf('a'),
    dict(type='RepeatDataset', times=2, dataset=leaf('a')),
    dict(type='ClassBalancedDataset', oversample_thr=0.1, dataset=dict(type='RepeatDataset', times=2, dataset=leaf('a'))),
    dict(type='ConcatDataset', datasets=[leaf('a'), leaf('b')]),
    dict(type='ConcatDataset', datasets=[leaf('a', pipeline=[]), leaf('b')]),  # the first leaf with a pipeline
    dict(type='ConcatDataset', pipeline=PIPELINE, datasets=[leaf('a', []), leaf('b', [])]),  # the wrapper's own
])
def test_test_pipeline_through_any_wrapper(dataset):
    cfg = Config(dict(test_dataloader=dict(dataset=dataset)))
    assert [t['type'] for t in get_test_pipeline_cfg(cfg)] == ['LoadImageFromFile', 'Resize', 'PackDetInputs']
    assert [t['type'] for t in get_test_pipeline_cfg(cfg, drop=())] == [t['type'] for t in PIPELINE]
    get_test_pipeline_cfg(cfg)[0]['type'] = 'changed'  # a copy: the config is untouched
    assert 'changed' not in str(cfg.test_dataloader)


def test_test_pipeline_falls_back_to_val_and_refuses_none():
    assert get_test_pipeline_cfg(Config(dict(val_dataloader=dict(dataset=leaf('v')))))[0]['type'] == 'LoadImageFromFile'
    with pytest.raises(ConfigError, match='no test_dataloader / val_dataloader'):
        get_test_pipeline_cfg(Config(dict()))
    with pytest.raises(ConfigError, match='has no pipeline'):
        get_test_pipeline_cfg(Config(dict(test_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[leaf('a', [])])))))


def test_leaf_datasets_in_order_and_by_reference():
    cfg = dict(type='ConcatDataset', datasets=[dict(type='RepeatDataset', times=3, dataset=leaf('a')), leaf('b')])
    leaves = leaf_datasets(cfg)
    assert [d['ann_file'] for d in leaves] == ['a.json', 'b.json']
    leaves[0]['ann_file'] = 'x.json'
    assert cfg['datasets'][0]['dataset']['ann_file'] == 'x.json'


@pytest.mark.parametrize('model, expected', [
    (dict(type='FasterRCNN', rpn_head=dict(type='RPNHead'), roi_head=dict(bbox_head=dict(num_classes=20))), 20),
    (dict(type='CascadeRCNN', roi_head=dict(bbox_head=[dict(num_classes=3), dict(num_classes=3)])), 3),
    (dict(type='RPN', rpn_head=dict(type='RPNHead')), 1),                  # class-agnostic: MMDetection's default 1
    (dict(type='RetinaNet', bbox_head=dict(type='RetinaHead', num_classes=80)), 80),
])
def test_num_classes(model, expected):
    assert num_classes(Config(dict(model=model))) == expected


def test_num_classes_without_a_head_says_so():
    with pytest.raises(ConfigError, match="type='X' has no roi_head.bbox_head, bbox_head or rpn_head"):
        num_classes(Config(dict(model=dict(type='X'))))


def test_overrides_are_checked_then_merged(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("model = dict(test_cfg=dict(rcnn=dict(score_thr=0.05)))\n")
    cfg = load_config(str(path), {'model.test_cfg.rcnn.score_thr': 0.5, 'model.test_cfg.rcnn.new_key': 1})
    assert cfg.model.test_cfg.rcnn.score_thr == 0.5 and cfg.model.test_cfg.rcnn.new_key == 1
    with pytest.raises(ConfigError, match=r'did you mean model\.test_cfg\.rcnn\.score_thr\?'):
        merge_overrides(cfg, {'model.test_cfg.rcnn.score_th': 0.3})
    assert 'score_th' not in cfg.model.test_cfg.rcnn  # nothing merged when one key is refused

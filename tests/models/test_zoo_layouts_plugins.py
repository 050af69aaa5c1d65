"""The configs that swap in this round's losses / coders / anchors build MMDetection's exact
state_dict layout (keys and shapes from <repo>/../shared/mmdet_zoo or $MMDET_ZOO_DIR), so zoo
checkpoints load strict."""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rcnn_plugins.registry import MODELS
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR', osp.join(REPO, '..', 'shared', 'mmdet_zoo')), 'keys')
CONFIGS = ['legacy_1.x/faster-rcnn_r50_fpn_1x_coco_v1.py', 'faster_rcnn/faster-rcnn_r50_fpn_giou_1x_coco.py',
           'faster_rcnn/faster-rcnn_r50_fpn_iou_1x_coco.py', 'faster_rcnn/faster-rcnn_r50_fpn_bounded-iou_1x_coco.py',
           'dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py', 'dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py']


@pytest.mark.parametrize('config', CONFIGS)
def test_state_dict_layout_matches_mmdetection(config):
    ref_path = osp.join(ZOO, config.replace('/', '__').replace('.py', '.json'))
    if not osp.exists(ref_path):
        pytest.skip(f'MMDetection zoo key list not found at {ref_path} (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    ref = json.load(open(ref_path))['state_dict']
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('rcnn_plugins')
    mine = {k: list(v.shape) for k, v in MODELS.build(cfg.model).state_dict().items()}
    assert sorted(set(mine) ^ set(ref)) == []
    assert {k: v for k, v in mine.items() if ref[k] != v} == {}


@pytest.mark.parametrize('config,fcs', [('dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py', ('offset_fc',)),
                                        ('dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py', ('offset_fc', 'mask_fc'))])
def test_deform_roi_pool_layout_is_faster_rcnn_plus_mmcvs_fcs(config, fcs):
    # The zoo lists no keys for these two; their layout is Faster R-CNN's plus, per FPN level,
    # mmcv's fc stacks: offset_fc = Linear(7*7*256, 1024), ReLU, Linear(1024, 1024), ReLU,
    # Linear(1024, 7*7*2); mask_fc = Linear(7*7*256, 1024), ReLU, Linear(1024, 7*7), Sigmoid.
    ref_path = osp.join(ZOO, 'faster_rcnn__faster-rcnn_r50_fpn_1x_coco.json')
    if not osp.exists(ref_path):
        pytest.skip(f'MMDetection zoo key list not found at {ref_path} (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    ref = dict(json.load(open(ref_path))['state_dict'])
    layers = {'offset_fc': [(0, 1024, 12544), (2, 1024, 1024), (4, 98, 1024)],
              'mask_fc': [(0, 1024, 12544), (2, 49, 1024)]}
    for level in range(4):
        for fc in fcs:
            for idx, out_f, in_f in layers[fc]:
                prefix = f'roi_head.bbox_roi_extractor.roi_layers.{level}.{fc}.{idx}.'
                ref[prefix + 'weight'], ref[prefix + 'bias'] = [out_f, in_f], [out_f]
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('rcnn_plugins')
    mine = {k: list(v.shape) for k, v in MODELS.build(cfg.model).state_dict().items()}
    assert sorted(set(mine) ^ set(ref)) == []
    assert {k: v for k, v in mine.items() if ref[k] != v} == {}

"""Checkpoint layout: the detector built from OUR config has exactly the state_dict keys and shapes
MMDetection 3.3 builds from its zoo config of the same name (recorded in
``<repo>/../shared/mmdet_zoo/keys/<folder>__<config>.json``, or under ``$MMDET_ZOO_DIR``), so that zoo checkpoints load strict.

Data-driven: add a ``(our config path, zoo json name)`` pair to ``CASES`` for each new config.
"""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
# The mmdet_zoo folder: $MMDET_ZOO_DIR, else <repo>/../shared/mmdet_zoo (a worktree's checkout of it).
ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR', osp.join(REPO, '..', 'shared', 'mmdet_zoo')), 'keys')

CASES = [
    ('configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'faster_rcnn__faster-rcnn_r50_fpn_1x_coco.json'),
    ('configs/faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', 'faster_rcnn__faster-rcnn_r50_fpn_2x_coco.json'),
    ('configs/faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py',
     'faster_rcnn__faster-rcnn_x101-32x4d_fpn_1x_coco.json'),
    ('configs/faster_rcnn/faster-rcnn_r50-caffe-dc5_1x_coco.py', 'faster_rcnn__faster-rcnn_r50-caffe-dc5_1x_coco.json'),
    ('configs/dcn/faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py', 'dcn__faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.json'),
    ('configs/dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py',
     'dcnv2__faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.json'),
    ('configs/gn+ws/faster-rcnn_r50_fpn_gn-ws-all_1x_coco.py', 'gn+ws__faster-rcnn_r50_fpn_gn-ws-all_1x_coco.json'),
    ('configs/res2net/faster-rcnn_res2net-101_fpn_2x_coco.py', 'res2net__faster-rcnn_res2net-101_fpn_2x_coco.json'),
    ('configs/resnest/faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py',
     'resnest__faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.json'),
    ('configs/empirical_attention/faster-rcnn_r50-attn1111_fpn_1x_coco.py',
     'empirical_attention__faster-rcnn_r50-attn1111_fpn_1x_coco.json'),
    ('configs/detectors/cascade-rcnn_r50-rfp_1x_coco.py', 'detectors__cascade-rcnn_r50-rfp_1x_coco.json'),
    ('configs/faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py',
     'faster_rcnn__faster-rcnn_r50_fpn_fcos-rpn_1x_coco.json'),
    ('configs/guided_anchoring/ga-faster-rcnn_r50_fpn_1x_coco.py',
     'guided_anchoring__ga-faster-rcnn_r50_fpn_1x_coco.json'),
    ('configs/guided_anchoring/ga-rpn_r50_fpn_1x_coco.py', 'guided_anchoring__ga-rpn_r50_fpn_1x_coco.json'),
    ('configs/cascade_rpn/cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py',
     'cascade_rpn__cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.json'),
]


@pytest.mark.parametrize('config,zoo_json', CASES, ids=[osp.basename(c) for c, _ in CASES])
def test_state_dict_layout_matches_mmdetection(config, zoo_json):
    ref_path = osp.join(ZOO, zoo_json)
    if not osp.isfile(ref_path):
        pytest.skip(f'MMDetection zoo key files not found at {ZOO} (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope('rcnn_plugins')
    from rcnn_plugins.registry import MODELS
    cfg.model.backbone.init_cfg = None
    try:
        model = MODELS.build(cfg.model)
    except KeyError as error:  # a type another component's work has not registered yet
        if 'is not a registered' not in str(error):
            raise
        pytest.skip(f'{osp.basename(config)}: {error}')
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    ref = json.load(open(ref_path))['state_dict']
    assert sorted(set(ref) - set(ours)) == [], 'keys MMDetection has and we lack'
    assert sorted(set(ours) - set(ref)) == [], 'keys we have and MMDetection lacks'
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}, 'shape mismatches (ours)'

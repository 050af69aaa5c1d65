"""Our configs of the R-CNN family build models whose state_dict keys and shapes are exactly those
MMDetection 3.3 builds from its config of the same name (so its checkpoints load strict).

Data-driven: one (our config, zoo json) pair per row. The zoo's key lists live next to the repository
(``<repo>/../shared/mmdet_zoo/keys``, or the folder named by ``MMDET_ZOO_DIR``); the test skips when
they are absent."""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
ZOO = os.environ.get('MMDET_ZOO_DIR', osp.join(REPO, '..', 'shared', 'mmdet_zoo'))

LAYOUTS = [
    ('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', 'cascade_rcnn__cascade-rcnn_r50_fpn_1x_coco.json'),
    ('double_heads/dh-faster-rcnn_r50_fpn_1x_coco.py', 'double_heads__dh-faster-rcnn_r50_fpn_1x_coco.json'),
    ('dynamic_rcnn/dynamic-rcnn_r50_fpn_1x_coco.py', 'dynamic_rcnn__dynamic-rcnn_r50_fpn_1x_coco.json'),
    ('groie/faste-rcnn_r50_fpn_groie_1x_coco.py', 'groie__faste-rcnn_r50_fpn_groie_1x_coco.json'),
    ('faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py', 'faster_rcnn__faster-rcnn_r50-caffe_c4-1x_coco.json'),
    ('faster_rcnn/faster-rcnn_r50-caffe-c4_ms-1x_coco.py', 'faster_rcnn__faster-rcnn_r50-caffe-c4_ms-1x_coco.json'),
    ('tridentnet/tridentnet_r50-caffe_1x_coco.py', 'tridentnet__tridentnet_r50-caffe_1x_coco.json'),
    ('tridentnet/tridentnet_r50-caffe_ms-1x_coco.py', 'tridentnet__tridentnet_r50-caffe_ms-1x_coco.json'),
    ('tridentnet/tridentnet_r50-caffe_ms-3x_coco.py', 'tridentnet__tridentnet_r50-caffe_ms-3x_coco.json'),
    ('sabl/sabl-faster-rcnn_r50_fpn_1x_coco.py', 'sabl__sabl-faster-rcnn_r50_fpn_1x_coco.json'),
    ('sabl/sabl-cascade-rcnn_r50_fpn_1x_coco.py', 'sabl__sabl-cascade-rcnn_r50_fpn_1x_coco.json'),
    ('pisa/faster-rcnn_r50_fpn_pisa_1x_coco.py', 'pisa__faster-rcnn_r50_fpn_pisa_1x_coco.json'),
    ('grid_rcnn/grid-rcnn_r50_fpn_gn-head_1x_coco.py', 'grid_rcnn__grid-rcnn_r50_fpn_gn-head_1x_coco.json'),
    ('grid_rcnn/grid-rcnn_r50_fpn_gn-head_2x_coco.py', 'grid_rcnn__grid-rcnn_r50_fpn_gn-head_2x_coco.json'),
    ('crowddet/crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman.py',
     'crowddet__crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman.json'),
    ('crowddet/crowddet-rcnn_refine_r50_fpn_8xb2-30e_crowdhuman.py',
     'crowddet__crowddet-rcnn_refine_r50_fpn_8xb2-30e_crowdhuman.json'),
]


@pytest.mark.parametrize('config,zoo_json', LAYOUTS, ids=[c for c, _ in LAYOUTS])
def test_state_dict_layout_equals_mmdetection(config, zoo_json):
    path = osp.join(ZOO, 'keys', zoo_json)
    if not osp.exists(path):
        pytest.skip(f'MMDetection zoo key list {path} not found (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    from rcnn_plugins.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    init_default_scope('rcnn_plugins')
    cfg.model.backbone.init_cfg = None  # no pretrained weights in tests
    model = MODELS.build(cfg.model)
    with open(path) as f:
        ref = json.load(f)
    assert type(model).__name__ == ref['model_class']
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: list(v) for k, v in ref['state_dict'].items()}
    assert sorted(set(theirs) - set(ours)) == [], 'keys MMDetection has and we lack'
    assert sorted(set(ours) - set(theirs)) == [], 'keys we have and MMDetection lacks'
    assert {k: v for k, v in ours.items() if theirs[k] != v} == {}, 'shapes that differ'

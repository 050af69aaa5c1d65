"""Checkpoint layout of the non-ResNet backbones and the necks: the detector built from OUR config
has exactly the state_dict keys and shapes MMDetection 3.3 builds from its zoo config of the same
name (``<repo>/../shared/mmdet_zoo/keys/<folder>__<config>.json``, or under ``$MMDET_ZOO_DIR``).

Same pattern as test_zoo_layouts.py; add ``(our config, zoo json)`` pairs to ``CASES``. Libra R-CNN's
BFP neck is checked on its own (the full Libra config needs its sampler and loss).
"""
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR', osp.join(REPO, '..', 'shared', 'mmdet_zoo')), 'keys')

CASES = [
    ('configs/pafpn/faster-rcnn_r50_pafpn_1x_coco.py', 'pafpn__faster-rcnn_r50_pafpn_1x_coco.json'),
    ('configs/regnet/faster-rcnn_regnetx-3.2GF_fpn_1x_coco.py', 'regnet__faster-rcnn_regnetx-3.2GF_fpn_1x_coco.json'),
    ('configs/hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py', 'hrnet__faster-rcnn_hrnetv2p-w18-1x_coco.json'),
    ('configs/hrnet/faster-rcnn_hrnetv2p-w32-1x_coco.py', 'hrnet__faster-rcnn_hrnetv2p-w32-1x_coco.json'),
]


def _reference(zoo_json):
    path = osp.join(ZOO, zoo_json)
    if not osp.isfile(path):
        pytest.skip(f'MMDetection zoo key files not found at {ZOO} (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    with open(path) as f:
        return json.load(f)['state_dict']


@pytest.mark.parametrize('config,zoo_json', CASES, ids=[osp.basename(c) for c, _ in CASES])
def test_state_dict_layout_matches_mmdetection(config, zoo_json):
    ref = _reference(zoo_json)
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope('rcnn_plugins')
    from rcnn_plugins.registry import MODELS
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ref) - set(ours)) == [], 'keys MMDetection has and we lack'
    assert sorted(set(ours) - set(ref)) == [], 'keys we have and MMDetection lacks'
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}, 'shape mismatches (ours)'


def test_libra_neck_layout():
    """Libra R-CNN's neck list [FPN, BFP(non_local)] built by the detector: keys neck.0.*, neck.1.*."""
    ref = _reference('libra_rcnn__libra-faster-rcnn_r50_fpn_1x_coco.json')
    cfg = Config.fromfile(osp.join(REPO, 'configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'))
    cfg.model.neck = [dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
                      dict(type='BFP', in_channels=256, num_levels=5, refine_level=2, refine_type='non_local')]
    cfg.model.backbone.init_cfg = None
    init_default_scope('rcnn_plugins')
    from rcnn_plugins.registry import MODELS
    model = MODELS.build(cfg.model)
    ours = {k: list(v.shape) for k, v in model.state_dict().items() if k.startswith('neck.')}
    assert ours == {k: v for k, v in ref.items() if k.startswith('neck.')}
    feats = model.eval().extract_feat(torch.rand(1, 3, 64, 96))  # FPN, then BFP on its 5 levels
    assert [tuple(f.shape) for f in feats] == [(1, 256, 64 // s, 96 // s) for s in (4, 8, 16, 32)] + [(1, 256, 1, 2)]

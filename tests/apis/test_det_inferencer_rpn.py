"""DetInferencer on a proposal-only (RPN) config: it used to fail on the missing roi_head; now the
model's one class-agnostic class is named 'object' and every prediction has label 0."""
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config

from rcnn_plugins.apis import DetInferencer
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


def test_rpn_config(tmp_path):
    cfg = Config.fromfile(DEMO)
    cfg.model = dict(type='RPN', backbone=cfg.model.backbone, neck=cfg.model.neck, rpn_head=cfg.model.rpn_head,
                     data_preprocessor=cfg.model.data_preprocessor, train_cfg=dict(rpn=cfg.model.train_cfg.rpn),
                     test_cfg=dict(rpn=dict(cfg.model.test_cfg.rpn, max_per_img=7)))
    cfg.model.backbone.init_cfg = None
    image = str(tmp_path / 'img.jpg')
    cv2.imwrite(image, np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8))
    inferencer = DetInferencer(cfg, None, device='cpu', show_progress=False)
    assert inferencer.classes == ('object', )
    out = inferencer([image], out_dir=str(tmp_path / 'out'), no_save_vis=True)
    pred = out['predictions'][0]
    assert 0 < len(pred['labels']) <= 7 and set(pred['labels']) == {0}
    assert set(pred['label_names']) == {'object'}

"""On a CUDA GPU (``pytest -m cuda``, run by tools/gpu_check.sh; skipped elsewhere): the fast path
and fp16 autocast give the fp32 plain path's detections, and the dense part of the model
(backbone, neck, RPN head convolutions) never synchronises the host with the device."""
import copy
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from rcnn_plugins.models.fast_inference import prepare_for_inference
from rcnn_plugins.registry import MODELS
from rcnn_plugins.structures import DetDataSample, bbox_overlaps
from repo_paths import REPO_ROOT

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')]

CFG = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'faster-rcnn_r50_fpn.py')


def _model():
    init_default_scope('rcnn_plugins')
    cfg = copy.deepcopy(Config.fromfile(CFG).model)
    cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # random heads score every class ~1/81: lift them over score_thr
        model.roi_head.bbox_head.fc_cls.weight.mul_(8)
    return model.cuda().eval()


def _data(model, n=2, size=(512, 672)):
    g = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8) for _ in range(n)]
    samples = [DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0)))
               for _ in range(n)]
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), False)


def test_fast_path_equals_plain_on_cuda():
    model = _model()
    data = _data(model)
    with torch.no_grad():
        plain = model(**copy.deepcopy(data), mode='predict')
        fast = prepare_for_inference(copy.deepcopy(model))
        got = fast(**copy.deepcopy(data), mode='predict')
    for p, q in zip(plain, got):
        p, q = p.pred_instances, q.pred_instances
        assert len(p) > 0 and len(p) == len(q)
        # cuDNN picks other algorithms for NHWC: float rounding only.
        torch.testing.assert_close(q.bboxes, p.bboxes, rtol=1e-3, atol=1e-2)
        torch.testing.assert_close(q.scores, p.scores, rtol=1e-3, atol=1e-4)


def test_fp16_autocast_finds_the_fp32_boxes():
    model = _model()
    data = _data(model)
    with torch.no_grad():
        fp32 = model(**copy.deepcopy(data), mode='predict')
        with torch.autocast('cuda', dtype=torch.float16):
            fp16 = model(**copy.deepcopy(data), mode='predict')
    for p, q in zip(fp32, fp16):
        p, q = p.pred_instances, q.pred_instances
        top = p[p.scores >= p.scores.quantile(0.9)]  # the clearest detections of a random model
        iou = bbox_overlaps(top.bboxes, q.bboxes.float()) * (top.labels[:, None] == q.labels[None])
        assert (iou.max(1)[0] > 0.9).float().mean() > 0.9


def test_no_host_sync_in_dense_part():
    model = prepare_for_inference(_model())
    data = _data(model)
    with torch.no_grad():
        model.extract_feat(data['inputs'])  # warm-up: cuDNN algorithm selection may sync
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            feats = model.extract_feat(data['inputs'])
            model.rpn_head(feats)
        finally:
            torch.cuda.set_sync_debug_mode('default')

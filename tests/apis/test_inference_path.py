"""The default inference path (BN folded + channels-last on a CPU) gives the plain model's
detections to float rounding; --exact is the plain model; --amp is refused without native bf16."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from rcnn_plugins.apis import inference_detector, init_detector
from rcnn_plugins.apis import inference_path as ip
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
OPTIONS = {'model.test_cfg.rcnn.score_thr': 0.0, 'model.test_cfg.rcnn.max_per_img': 50}


def _spread(model):
    """Non-trivial BN statistics (so that a wrong fold shows) and spread scores (no near-ties)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
        model.rpn_head.rpn_cls.weight.normal_(0, 0.1, generator=g)
        model.roi_head.bbox_head.fc_cls.weight.normal_(0, 0.005, generator=g)
        model.roi_head.bbox_head.fc_reg.weight.normal_(0, 0.05, generator=g)


def test_default_path_equals_exact(tmp_path):
    torch.manual_seed(0)
    plain = init_detector(DEMO, cfg_options=OPTIONS, exact=True)
    _spread(plain)
    ckpt = str(tmp_path / 'w.pth')
    torch.save({'state_dict': plain.state_dict()}, ckpt)
    fast = init_detector(DEMO, ckpt, cfg_options=OPTIONS)
    assert fast.inference_path['fuse_conv_bn'] and fast.inference_path['channels_last']
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # really folded
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    rng = np.random.RandomState(0)
    img = (cv2.resize(rng.rand(6, 6, 3), (200, 150)) * 255).astype(np.uint8)
    a = inference_detector(plain, img).pred_instances
    b = inference_detector(fast, img).pred_instances
    assert len(a) == len(b) > 10 and len(a.labels.unique()) > 1, (a.scores, a.labels)
    assert a.scores.max() - a.scores.min() > 0.1
    assert torch.equal(a.labels, b.labels)
    torch.testing.assert_close(b.scores, a.scores, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b.bboxes, a.bboxes, rtol=1e-4, atol=1e-3)
    with pytest.warns(UserWarning, match='exact=True'):
        fast.state_dict()  # a fused model's keys are not a training checkpoint's


def test_choices_and_amp_refusal(monkeypatch):
    exact = ip.choose_inference_path('cpu', exact=True)
    assert not (exact['fuse_conv_bn'] or exact['channels_last'] or exact['autocast'])
    monkeypatch.setattr(ip, 'cpu_bf16_supported', lambda: False)
    with pytest.raises(ip.AmpUnavailableError, match='no native bf16'):
        ip.choose_inference_path('cpu', amp=True)
    monkeypatch.setattr(ip, 'cpu_bf16_supported', lambda: True)
    amp = ip.choose_inference_path('cpu', amp=True)
    assert amp['autocast'] == 'bf16' and amp['channels_last'] and amp['fuse_conv_bn']

"""Inference fast path and bf16: folded BN and channels-last give the plain path's predictions
(to 1e-4 / 1e-5), and bf16 autocast on a trained tiny model finds the same boxes (IoU > 0.95)."""
import copy
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import nn

from rcnn_plugins.models.fast_inference import prepare_for_inference
from rcnn_plugins.models.layers import FrozenBatchNorm2d, fuse_conv_bn
from rcnn_plugins.registry import MODELS
from rcnn_plugins.structures import DetDataSample, bbox_overlaps
from repo_paths import REPO_ROOT

DEMO_CFG = os.path.join(REPO_ROOT, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
BF16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _randomize_bn(model):
    """Non-trivial running statistics and affine weights, so that a wrong fold shows."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)


def _build(frozen_bn=False):
    init_default_scope('rcnn_plugins')
    cfg = copy.deepcopy(Config.fromfile(DEMO_CFG).model)
    if frozen_bn:  # the pretrained-backbone setting: FrozenBatchNorm2d in the backbone
        cfg.backbone.update(norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _scene(seed=0, size=(128, 160)):
    """A dark image with three bright shapes, its data sample and gt boxes (xyxy pixels)."""
    h, w = size
    img = torch.full((3, h, w), 30, dtype=torch.uint8)
    boxes = torch.tensor([[10., 12., 60., 50.], [80., 30., 140., 100.], [30., 70., 70., 120.]])
    for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        img[k % 3, y1:y2, x1:x2] = 230
    s = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0)))
    s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1, 2]))
    return img, s


def _predict(model, imgs_samples, amp=False):
    imgs, samples = zip(*imgs_samples)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        data = model.data_preprocessor(dict(inputs=list(imgs), data_samples=copy.deepcopy(list(samples))), False)
        return [s.pred_instances for s in model(**data, mode='predict')]


def test_fuse_conv_bn_folds_eval_bn_and_frozen_bn():
    torch.manual_seed(0)
    for bn_cls in (nn.BatchNorm2d, FrozenBatchNorm2d):
        conv = nn.Conv2d(4, 6, 3, padding=1, bias=bn_cls is nn.BatchNorm2d)
        seq = nn.Sequential(conv, bn_cls(6), nn.ReLU())
        _randomize_bn(seq)
        seq.eval()
        x = torch.randn(2, 4, 9, 11)
        expected = seq(x)
        fused = fuse_conv_bn(copy.deepcopy(seq))
        assert isinstance(fused[1], nn.Identity) and fused[0].bias is not None
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_fuse_conv_bn_refuses_training_bn():
    seq = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    with pytest.raises(ValueError, match='model.eval'):
        fuse_conv_bn(seq)


@pytest.mark.parametrize('frozen_bn', [False, True])
def test_fused_and_channels_last_predictions_equal_plain(frozen_bn):
    model = _build(frozen_bn).eval()
    _randomize_bn(model)
    scenes = [_scene(), _scene(size=(112, 144))]
    plain = _predict(model, scenes)
    assert sum(len(p) for p in plain) > 0

    channels_last = prepare_for_inference(copy.deepcopy(model), fuse_conv_bn=False, channels_last=True)
    fused = prepare_for_inference(copy.deepcopy(model), fuse_conv_bn=True, channels_last=False)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert n_bn == 0, f'{n_bn} BatchNorm layers left after fusing'
    for fast, tol in ((channels_last, 1e-5), (fused, 1e-4)):
        for p, q in zip(plain, _predict(fast, scenes)):
            assert len(p) == len(q)
            torch.testing.assert_close(q.bboxes, p.bboxes, rtol=tol, atol=tol * 100)  # pixels of ~100
            torch.testing.assert_close(q.scores, p.scores, rtol=tol, atol=tol)
            assert torch.equal(q.labels, p.labels)


def test_channels_last_preprocessor_keeps_values():
    model = _build()
    img, s = _scene()
    plain = model.data_preprocessor(dict(inputs=[img], data_samples=[s]), False)['inputs']
    model.data_preprocessor.channels_last = True
    nhwc = model.data_preprocessor(dict(inputs=[img], data_samples=[s]), False)['inputs']
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, nhwc)


@pytest.mark.skipif(not BF16, reason='this CPU has no native bf16 (AVX-512 BF16 / AMX): bf16 convs would be '
                                     'emulated, ~400x slower')
def test_bf16_predictions_match_fp32_on_trained_model():
    """The demo model overfitted on one scene for 80 steps: under bf16 autocast every confident
    fp32 detection is found again (same label, IoU > 0.95) and scores stay within 0.05."""
    model = _build()
    scenes = [_scene()]
    img, s = scenes[0]
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[s]), True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(80):
        losses = model(**data, mode='loss')
        opt.zero_grad()
        model.parse_losses(losses)[0].backward()   # RPN losses are per-level lists
        opt.step()
    model.eval()
    fp32 = _predict(model, scenes)[0]
    confident = fp32[fp32.scores > 0.5]
    assert len(confident) >= 2, fp32  # the model has learned something to compare
    for fast in (model, prepare_for_inference(copy.deepcopy(model), fuse_conv_bn=True, channels_last=True)):
        bf16 = _predict(fast, scenes, amp=True)[0]
        assert bf16.bboxes.dtype == torch.float32
        iou = bbox_overlaps(confident.bboxes, bf16.bboxes)  # (K, K')
        same_label = confident.labels[:, None] == bf16.labels[None, :]
        best, idx = (iou * same_label).max(1)
        assert (best > 0.95).all(), (best, confident, bf16)
        assert (bf16.scores[idx] - confident.scores).abs().max() < 0.05


def test_init_detector_applies_the_fast_path():
    from rcnn_plugins.apis import init_detector
    model = init_detector(DEMO_CFG, None, fuse_conv_bn=True, channels_last=True)
    assert not model.training and model.data_preprocessor.channels_last
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)

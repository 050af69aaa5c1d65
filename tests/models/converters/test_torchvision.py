"""torchvision <-> rcnn_plugins weights: torchvision's own ``fasterrcnn_resnet50_fpn`` (random but
non-trivial weights) and ours with the converted weights and the torchvision config give the same
detections on the same image file; converting back gives the original state dict."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
CONFIG = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r50_fpn_torchvision.py')
# torchvision's min_size / max_size, small to keep the CPU time low; our Resize scale is (max, min).
MIN_SIZE, MAX_SIZE = 320, 533


def run_tool(*args):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout


def build_torchvision():
    """``fasterrcnn_resnet50_fpn`` as torchvision builds it around its pretrained COCO weights:
    FrozenBatchNorm2d with eps=0, 3 trainable stages (``weights=None`` would give BatchNorm2d)."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3)
    model = FasterRCNN(backbone, num_classes=91, min_size=MIN_SIZE, max_size=MAX_SIZE)
    overwrite_eps(model, 0.0)
    return model


def randomise(tv):
    """Non-trivial weights: random BN statistics / affine, an RPN whose objectness spreads (no
    ties among scores), class logits that put some scores over 0.05, class-specific boxes."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, FrozenBatchNorm2d):
                n = m.weight.numel()
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
        tv.rpn.head.cls_logits.weight.normal_(0, 0.1, generator=g)
        tv.rpn.head.bbox_pred.weight.normal_(0, 0.02, generator=g)
        predictor = tv.roi_heads.box_predictor
        predictor.bbox_pred.weight.normal_(0, 0.01, generator=g)
        predictor.bbox_pred.bias.normal_(0, 0.01, generator=g)


def spread_class_logits(tv, image):
    """A random classifier on the RoI features of ``image`` that varies across RoIs: random RoI
    features share a large common part, which alone would give every RoI the same class. The
    logits are made of the deviations from the mean feature, with a std of 2."""
    feats = []
    hook = tv.roi_heads.box_head.register_forward_hook(lambda module, args, out: feats.append(out))
    with torch.no_grad():
        tv([image])
    hook.remove()
    f = feats[0]
    w = torch.randn(tv.roi_heads.box_predictor.cls_score.weight.shape, generator=torch.Generator().manual_seed(1))
    w = w * 2 / ((f - f.mean(0)) @ w.t()).std()
    with torch.no_grad():
        tv.roi_heads.box_predictor.cls_score.weight.copy_(w)
        tv.roi_heads.box_predictor.cls_score.bias.copy_(-w @ f.mean(0))


@pytest.fixture(scope='module')
def tv_setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('tv_convert')
    torch.manual_seed(0)
    tv = build_torchvision()
    randomise(tv)
    tv.eval()
    # 190 x 240 -> 320 x 404, padded 320 x 416: 13 columns at P5 and 7 at P6, whose torchvision
    # stride is 416 // 7 = 59, not 64 (stride_from_input_size).
    rng = np.random.RandomState(0)
    import cv2
    rgb = (cv2.resize(rng.rand(8, 10, 3).astype(np.float32), (240, 190)) * 200
           + rng.rand(190, 240, 3) * 55).astype(np.uint8)
    img_path = str(tmp / 'img.png')
    cv2.imwrite(img_path, rgb[..., ::-1])
    spread_class_logits(tv, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    src = str(tmp / 'tv.pth')
    torch.save(tv.state_dict(), src)
    dst = str(tmp / 'ours.pth')
    out = run_tool('tools/model_converters/torchvision2rcnn.py', src, dst)
    assert '90 classes' in out
    return dict(tv=tv, rgb=rgb, img=img_path, src=src, ours=dst, tmp=tmp)


def test_same_detections_as_torchvision(tv_setup):
    from mmengine.config import Config

    from rcnn_plugins.apis import inference_detector, init_detector
    dst = tv_setup['ours']
    x = torch.from_numpy(tv_setup['rgb']).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        expected = tv_setup['tv']([x])[0]
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset.pipeline[1].scale = (MAX_SIZE, MIN_SIZE)
    model = init_detector(cfg, dst)
    assert model.dataset_meta['classes'][0] == 'person' and len(model.dataset_meta['classes']) == 90
    got = inference_detector(model, tv_setup['img']).pred_instances

    # Non-trivial: torchvision finds its 100 detections of several classes.
    assert len(expected['scores']) == 100 and len(expected['labels'].unique()) >= 10
    assert len(got.scores) == len(expected['scores'])
    # Detections whose scores tie to ~1e-6 can come out in either order (float rounding differs
    # with the thread count), so pair each of ours with torchvision's of the same label, box within
    # 0.01 px and score within 1e-4, one to one. Only at the 100-detection cut may a near-tie
    # keep a different box.
    labels = got.labels + 1
    taken = torch.zeros(len(expected['scores']), dtype=torch.bool)
    box_diff = score_diff = 0.0
    cut = expected['scores'].min()
    for i in range(len(got.scores)):   # test-only loop over 100 detections
        d_box = (expected['boxes'] - got.bboxes[i]).abs().amax(dim=1)
        d_score = (expected['scores'] - got.scores[i]).abs()
        match = ((expected['labels'] == labels[i]) & ~taken & (d_box < 0.01) & (d_score < 1e-4)).nonzero()
        if len(match) == 0:
            assert got.scores[i] - cut < 1e-4, f'detection {i} (label {labels[i]}, score {got.scores[i]:.6f}) ' \
                                              'has no torchvision counterpart'
            continue
        j = match[0, 0]
        taken[j] = True
        box_diff, score_diff = max(box_diff, d_box[j].item()), max(score_diff, d_score[j].item())
    assert taken.sum() >= len(taken) - 2
    print(f'max |box diff| {box_diff:.2e} px, max |score diff| {score_diff:.2e}')


def test_round_trip_gives_the_identical_state_dict(tv_setup):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    back = str(tv_setup['tmp'] / 'back.pth')
    out = run_tool('tools/model_converters/rcnn2torchvision.py', tv_setup['ours'], back)
    assert 'num_classes=91' in out
    original = torch.load(tv_setup['src'], weights_only=True)
    restored = torch.load(back, weights_only=True)
    assert set(restored) == set(original)
    for key, value in original.items():
        assert torch.equal(restored[key], value), key
    # Loads into the model it came from and into torchvision's BatchNorm2d variant alike.
    build_torchvision().load_state_dict(restored, strict=True)
    fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).load_state_dict(restored, strict=True)


def test_pretrained_file_layout_and_errors(tv_setup, tmp_path):
    """The released COCO file has pre-0.13 FPN / RPN conv names and FrozenBatchNorm2d (no
    num_batches_tracked); it converts to the same tensors. Wrong files get a clear error."""
    from rcnn_plugins.models.converters import (ConversionError, convert_to_torchvision_checkpoint, rcnn_to_torchvision,
                                                torchvision_to_rcnn)
    new = torch.load(tv_setup['src'], weights_only=True)
    old = {}
    for k, v in new.items():
        if k.endswith('num_batches_tracked'):
            continue
        k = k.replace('rpn.head.conv.0.0.', 'rpn.head.conv.')
        for block in ('inner_blocks', 'layer_blocks'):
            for i in range(4):
                k = k.replace(f'fpn.{block}.{i}.0.', f'fpn.{block}.{i}.')
        old[k] = v
    from_new, _ = torchvision_to_rcnn(new)
    from_old, _ = torchvision_to_rcnn(old)
    assert set(from_new) == set(from_old)
    for k in from_new:
        if k.endswith('num_batches_tracked'):
            assert from_old[k].item() == 0
        else:
            assert torch.equal(from_new[k], from_old[k]), k
    # Ours: background logit last, no background regressor.
    cls = new['roi_heads.box_predictor.cls_score.weight']
    assert torch.equal(from_new['roi_head.bbox_head.fc_cls.weight'][-1], cls[0])
    assert torch.equal(from_new['roi_head.bbox_head.fc_cls.weight'][0], cls[1])
    assert from_new['roi_head.bbox_head.fc_reg.weight'].shape == (360, 1024)
    # Without the kept background rows, going back fills them with zeros.
    back = rcnn_to_torchvision(from_new)
    assert torch.equal(back['roi_heads.box_predictor.bbox_pred.weight'][:4], torch.zeros(4, 1024))

    with pytest.raises(ConversionError, match=r'mask\.pth.*roi_heads\.mask_head'):
        torchvision_to_rcnn(dict(new, **{'roi_heads.mask_head.mask_fcn1.0.weight': torch.zeros(1)}),
                            src='mask.pth')
    with pytest.raises(ConversionError, match='not a torchvision Faster R-CNN'):
        torchvision_to_rcnn({'conv1.weight': torch.zeros(1)}, src='resnet.pth')
    bad = tmp_path / 'bad.pth'
    bad.write_text('not a checkpoint')
    proc = subprocess.run([sys.executable, 'tools/model_converters/torchvision2rcnn.py', str(bad),
                           str(tmp_path / 'x.pth')], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode != 0 and 'bad.pth: cannot be read' in proc.stderr and 'Traceback' not in proc.stderr

    # A Runner checkpoint (message hub history, numpy scalars in meta) converts back, as the docs say.
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_torchvision_convert')
    hub.update_scalar('train/loss', 1.0)
    runner_ckpt = dict(state_dict=from_new, meta=dict(seed=np.int64(3)), message_hub=hub.state_dict())
    torch.save(runner_ckpt, tmp_path / 'epoch_1.pth')
    assert convert_to_torchvision_checkpoint(str(tmp_path / 'epoch_1.pth'), str(tmp_path / 'tv.pth')) == 91

"""Faster R-CNN assembled from configs/_base_/models/faster-rcnn_r50_fpn.py: MMDetection-compatible
state_dict keys and parameter count, loss / predict / tensor modes, overfitting one image,
rescaling to the original image, autocast, swaps from config alone, and the RPN detector."""
import copy
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from rcnn_plugins.registry import MODELS
from rcnn_plugins.structures import DetDataSample, bbox_overlaps
from repo_paths import REPO_ROOT

CFG_PATH = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'faster-rcnn_r50_fpn.py')


def model_cfg(depth=50):
    cfg = copy.deepcopy(Config.fromfile(CFG_PATH).model)
    cfg.backbone.init_cfg = None  # no pretrained weights offline
    if depth != 50:
        cfg.backbone.depth = depth
        if depth in (18, 34):
            cfg.neck.in_channels = [64, 128, 256, 512]
    return cfg


def build(cfg):
    init_default_scope('rcnn_plugins')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def light(cfg, num_classes=2):
    """Cheaper training settings for CPU tests (fewer sampled anchors / RoIs / proposals)."""
    cfg.roi_head.bbox_head.num_classes = num_classes
    cfg.roi_head.bbox_head.fc_out_channels = 256
    cfg.train_cfg.rpn.sampler.num = 128
    cfg.train_cfg.rcnn.sampler.num = 128
    cfg.train_cfg.rpn_proposal.update(nms_pre=300, max_per_img=100)
    cfg.test_cfg.rpn.update(nms_pre=300, max_per_img=100)
    return cfg


def sample(img_shape, bboxes, labels, ori_shape=None, scale_factor=(1.0, 1.0)):
    s = DetDataSample(metainfo=dict(img_shape=img_shape, ori_shape=ori_shape or img_shape, scale_factor=scale_factor))
    s.gt_instances = InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
                                  labels=torch.tensor(labels, dtype=torch.long))
    return s


def batch(model, sizes=((128, 160), (96, 128)), boxes=(([[20, 30, 90, 100]], [1]), ([], [])), training=True):
    """Random uint8 images through the model's data preprocessor."""
    g = torch.Generator().manual_seed(1)
    imgs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]
    samples = [sample(hw, b, lab) for hw, (b, lab) in zip(sizes, boxes)]
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training)


def loss_step(model, data):
    model.train()
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)  # what the Runner's train step sums (per-level lists too)
    total.backward()
    return losses


def all_finite(losses):
    """Every loss finite; the RPN's are lists with one tensor per pyramid level."""
    return all(torch.isfinite(t).all() for v in losses.values() for t in (v if isinstance(v, list) else [v]))


# ---------------------------------------------------------------- MMDetection compatibility
def test_r50_fpn_keys_shapes_and_param_count():
    model = build(model_cfg())
    sd = model.state_dict()
    assert len(sd) == 348
    assert sum(p.numel() for p in model.parameters()) == 41_753_056
    expected = {
        'backbone.layer1.0.conv1.weight': (64, 64, 1, 1),
        'neck.lateral_convs.0.conv.weight': (256, 256, 1, 1),
        'neck.fpn_convs.3.conv.bias': (256,),
        'rpn_head.rpn_conv.weight': (256, 256, 3, 3),
        'rpn_head.rpn_cls.weight': (3, 256, 1, 1),
        'rpn_head.rpn_reg.weight': (12, 256, 1, 1),
        'roi_head.bbox_head.shared_fcs.0.weight': (1024, 12544),
        'roi_head.bbox_head.fc_cls.weight': (81, 1024),
        'roi_head.bbox_head.fc_reg.weight': (320, 1024),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    # Heads of the model are the MMDetection classes by name, with the config's settings.
    assert type(model).__name__ == 'FasterRCNN'
    assert model.rpn_head.train_cfg['assigner']['pos_iou_thr'] == 0.7
    assert model.roi_head.test_cfg['max_per_img'] == 100
    # A state dict round trip (what loading an MMDetection checkpoint does) is exact.
    other = build(model_cfg())
    missing, unexpected = other.load_state_dict(sd, strict=True)
    assert not missing and not unexpected


def test_loss_r50_two_images_one_without_gt():
    model = build(model_cfg())
    data = batch(model, sizes=((256, 224), (192, 256)), boxes=(([[20, 30, 150, 200], [100, 20, 200, 90]], [3, 79]),
                                                              ([], [])))
    losses = loss_step(model, data)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'acc'}
    assert all_finite(losses)
    assert model.roi_head.bbox_head.fc_cls.weight.grad.abs().sum() > 0
    assert model.rpn_head.rpn_cls.weight.grad.abs().sum() > 0


def test_predict_and_tensor_modes():
    model = build(light(model_cfg(18)))
    model.eval()
    data = batch(model, training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')
        raw = model(data['inputs'], mode='tensor')
    for s in out:
        p = s.pred_instances
        assert p.bboxes.shape[1] == 4 and p.bboxes.dtype == torch.float32
        assert len(p.bboxes) == len(p.scores) == len(p.labels) <= 100
    (cls_score, bbox_pred), = raw
    assert cls_score.shape[1] == 3 and bbox_pred.shape[1] == 8 and cls_score.shape[0] == bbox_pred.shape[0]
    # Precomputed proposals in the samples replace the RPN: one proposal -> at most num_classes boxes.
    data = batch(model, training=False)
    for s in data['data_samples']:
        s.proposals = InstanceData(bboxes=torch.tensor([[10., 10., 60., 70.]]), scores=torch.ones(1))
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'], rescale=False)
    assert all(len(s.pred_instances) <= 2 for s in out)
    with pytest.raises(ValueError, match='Invalid mode'):
        model(**data, mode='nope')
    with pytest.raises(ValueError, match='data samples'):
        model.loss(data['inputs'], data['data_samples'][:1])


# ---------------------------------------------------------------- learning
@pytest.mark.slow
def test_overfit_one_image():
    """R18-FPN learns one bright rectangle in 20 Adam steps: the loss falls below half its start and the
    top-scoring box overlaps the object with IoU > 0.5 (about 40 s on an idle 2-core CPU)."""
    cfg = light(model_cfg(18))
    cfg.backbone.frozen_stages = -1
    model = build(cfg)
    img = torch.full((3, 96, 128), 20, dtype=torch.uint8)
    img[:, 30:70, 40:100] = 230
    gt = torch.tensor([[40., 30., 100., 70.]])
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample((96, 128), gt.tolist(), [1])]), True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    history = []
    for _ in range(20):
        losses = model(**data, mode='loss')
        total, _ = model.parse_losses(losses)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert sum(history[-3:]) / 3 < 0.5 * history[0], history

    model.eval()
    with torch.no_grad():
        pred = model(**copy.deepcopy(data), mode='predict')[0].pred_instances
    assert len(pred) > 0
    assert bbox_overlaps(pred.bboxes[:1], gt).item() > 0.5
    assert pred.labels[0].item() == 1


def test_predict_rescales_to_original_image():
    """The same 96x128 input declared as a 0.5x resize of a 192x256 original gives 2x boxes, same scores."""
    model = build(light(model_cfg(18)))
    model.eval()
    img = torch.randint(0, 256, (3, 96, 128), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    plain = model.data_preprocessor(dict(inputs=[img], data_samples=[sample((96, 128), [], [])]), False)
    scaled = model.data_preprocessor(
        dict(inputs=[img], data_samples=[sample((96, 128), [], [], ori_shape=(192, 256), scale_factor=(0.5, 0.5))]),
        False)
    with torch.no_grad():
        p1 = model(**plain, mode='predict')[0].pred_instances
        p2 = model(**scaled, mode='predict')[0].pred_instances
    assert len(p1) > 0
    assert torch.allclose(p2.bboxes, p1.bboxes * 2, atol=1e-3)
    assert torch.allclose(p2.scores, p1.scores) and torch.equal(p2.labels, p1.labels)
    assert p2.bboxes[:, 2].max() <= 256 and p2.bboxes[:, 3].max() <= 192


def test_autocast_cpu_bfloat16():
    model = build(light(model_cfg(18)))
    data = batch(model)
    model.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    assert all_finite(losses)
    model.parse_losses(losses)[0].backward()
    model.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(**batch(model, training=False), mode='predict')
    assert all(s.pred_instances.bboxes.dtype == torch.float32 for s in out)


# ---------------------------------------------------------------- swaps from config alone
def _swap_roipool(cfg):
    cfg.roi_head.bbox_roi_extractor.roi_layer = dict(type='RoIPool', output_size=7)


def _swap_classes(cfg):
    cfg.roi_head.bbox_head.num_classes = 3


def _swap_agnostic(cfg):
    cfg.roi_head.bbox_head.reg_class_agnostic = True


def _swap_scales(cfg):
    cfg.rpn_head.anchor_generator.scales = [4, 8]


def _swap_assigners(cfg):
    cfg.train_cfg.rpn.assigner.update(pos_iou_thr=0.6, neg_iou_thr=0.4, min_pos_iou=0.2)
    cfg.train_cfg.rcnn.assigner.update(pos_iou_thr=0.6, neg_iou_thr=0.6, min_pos_iou=0.6)


def _swap_smooth_l1(cfg):
    cfg.rpn_head.loss_bbox = dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)
    cfg.roi_head.bbox_head.loss_bbox = dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)


@pytest.mark.parametrize('swap, check', [
    (_swap_roipool, lambda m: type(m.roi_head.bbox_roi_extractor.roi_layers[0]).__name__ == 'RoIPool'),
    (_swap_classes, lambda m: m.roi_head.bbox_head.fc_cls.out_features == 4
     and m.roi_head.bbox_head.fc_reg.out_features == 12),
    (_swap_agnostic, lambda m: m.roi_head.bbox_head.fc_reg.out_features == 4),
    (_swap_scales, lambda m: m.rpn_head.rpn_cls.out_channels == 6 and m.rpn_head.rpn_reg.out_channels == 24),
    (_swap_assigners, lambda m: m.roi_head.bbox_assigner.pos_iou_thr == 0.6
     and m.rpn_head.assigner.neg_iou_thr == 0.4),
    (_swap_smooth_l1, lambda m: type(m.rpn_head.loss_bbox).__name__ == 'SmoothL1Loss'),
], ids=['roipool', 'num_classes3', 'class_agnostic', 'anchor_scales', 'assigners', 'smooth_l1'])
def test_config_swaps_run_a_loss_step(swap, check):
    cfg = light(model_cfg(18))
    cfg.roi_head.bbox_head.num_classes = 80
    swap(cfg)
    model = build(cfg)
    assert check(model)
    data = batch(model, sizes=((64, 96), (64, 64)), boxes=(([[10, 10, 50, 40]], [2]), ([[5, 5, 30, 60]], [0])))
    losses = loss_step(model, data)
    assert all_finite(losses)


@pytest.mark.parametrize('depth, channels', [(18, 512), (34, 512), (50, 2048), (101, 2048)])
def test_resnet_depths(depth, channels):
    model = build(light(model_cfg(depth)))
    assert model.neck.lateral_convs[3].conv.in_channels == channels
    losses = loss_step(model, batch(model, sizes=((64, 64),), boxes=(([[10, 10, 50, 40]], [1]),)))
    assert all_finite(losses)


# ---------------------------------------------------------------- RPN detector
def test_rpn_detector():
    full = model_cfg(18)
    cfg = dict(type='RPN', data_preprocessor=full.data_preprocessor, backbone=full.backbone, neck=full.neck,
               rpn_head=full.rpn_head, train_cfg=dict(rpn=full.train_cfg.rpn), test_cfg=dict(rpn=full.test_cfg.rpn))
    model = build(Config(dict(model=cfg)).model)
    assert 'bbox_head.rpn_conv.weight' in model.state_dict()
    losses = loss_step(model, batch(model))
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    model.eval()
    s = sample((96, 128), [], [], ori_shape=(192, 256), scale_factor=(0.5, 0.5))
    img = torch.randint(0, 256, (3, 96, 128), dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[s]), False)
    with torch.no_grad():
        p = model(**data, mode='predict')[0].pred_instances
        raw = model.bbox_head.predict(model.extract_feat(data['inputs']), data['data_samples'], rescale=False)[0]
    assert 0 < len(p) <= 1000 and (p.labels == 0).all()
    assert (p.scores[:-1] >= p.scores[1:]).all()
    assert torch.allclose(p.bboxes, raw.bboxes * 2, atol=1e-3)
    assert p.bboxes[:, 2].max() <= 256 and p.bboxes[:, 3].max() <= 192

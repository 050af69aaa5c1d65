"""The paper's VGG-16 Faster R-CNN config (built once, full size: 137M parameters), its anchors and
schedule; the Luminoth-style and OHEM configs train one step and predict on a small image."""
import os.path as osp

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from rcnn_plugins.models.layers import CropAndResize, RoIPool
from rcnn_plugins.models.task_modules import OHEMSampler
from rcnn_plugins.registry import MODELS, TASK_UTILS
from rcnn_plugins.structures import DetDataSample
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
VOC07 = osp.join(REPO, 'configs/faster_rcnn_paper/faster-rcnn_vgg16_voc07.py')
VOC0712 = osp.join(REPO, 'configs/faster_rcnn_paper/faster-rcnn_vgg16_voc0712.py')
LUMINOTH = osp.join(REPO, 'configs/faster_rcnn_paper/faster-rcnn_r50_fpn_luminoth.py')
OHEM = osp.join(REPO, 'configs/faster_rcnn/faster-rcnn_r50_fpn_ohem_1x_coco.py')


def batch(model, size, boxes, labels, training):
    g = torch.Generator().manual_seed(1)
    img = torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8)
    s = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0)))
    s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32), labels=torch.tensor(labels))
    return model.data_preprocessor(dict(inputs=[img], data_samples=[s]), training)


def train_step_and_predict(model, size=(160, 192), boxes=((30., 20., 150., 140.), ), labels=(0, )):
    model.train()
    losses = model(**batch(model, size, boxes, labels, True), mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)   # the RPN losses are per-level lists (MMDetection)
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        (pred, ) = model(**batch(model, size, boxes, labels, False), mode='predict')
    assert pred.pred_instances.bboxes.shape[1] == 4
    return losses


def vgg16_param_count(num_classes):
    """By hand: VGG-16's 13 convs, the RPN, fc6 / fc7 and the two predictors."""
    convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    backbone = sum(9 * cin * cout + cout for cin, cout in convs)
    rpn = (9 * 512 * 512 + 512) + (512 * 9 + 9) + (512 * 36 + 36)  # 3x3 conv, objectness, deltas
    fcs = (512 * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096)
    predictors = (4096 * (num_classes + 1) + num_classes + 1) + (4096 * 4 * num_classes + 4 * num_classes)
    return backbone, rpn, fcs, predictors


def test_vgg16_paper_model_full_size(tmp_path, monkeypatch):
    """One build of the full model: ImageNet init resolved as torchvision://vgg16 in a temp hub cache,
    conv5_3 and fc6 / fc7 equal torchvision's VGG-16 on the same (random) weights, parameter count,
    one train step and predict on a 224 px image."""
    torch.manual_seed(0)
    tv = torchvision.models.vgg16().eval()
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    torch.save(tv.state_dict(), cache / 'vgg16-397923af.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))

    cfg = Config.fromfile(VOC07)
    init_default_scope('rcnn_plugins')
    model = MODELS.build(cfg.model)
    model.init_weights()

    backbone, rpn, fcs, predictors = vgg16_param_count(20)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.backbone) == backbone == 14_714_688
    assert count(model.rpn_head) == rpn
    assert count(model.roi_head) == fcs + predictors
    assert count(model) == backbone + rpn + fcs + predictors == 137_057_234
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen_convs = 9 * 3 * 64 + 64 + 9 * 64 * 64 + 64 + 9 * 64 * 128 + 128 + 9 * 128 * 128 + 128
    assert trainable == count(model) - frozen_convs

    x = torch.rand(1, 3, 64, 80)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model.backbone(x)[0], tv.features[:30](x), rtol=0, atol=0)
        # fc6 / fc7 (+ ReLU) of the head on a pooled (R, 512, 7, 7) map = torchvision's classifier[:5]
        # on the same map (its flatten is torch.flatten(x, 1), channel-major, as the head's).
        pooled = torch.rand(3, 512, 7, 7)
        head = model.roi_head.bbox_head
        h = pooled.flatten(1)
        for fc in head.shared_fcs:
            h = head.relu(fc(h))
        torch.testing.assert_close(h, tv.classifier[:5](torch.flatten(pooled, 1)), rtol=0, atol=0)
    for fc, tv_fc in zip(head.shared_fcs, (tv.classifier[0], tv.classifier[3])):
        assert torch.equal(fc.weight, tv_fc.weight) and torch.equal(fc.bias, tv_fc.bias)
    del tv

    assert isinstance(model.roi_head.bbox_roi_extractor.roi_layers[0], RoIPool)
    assert model.roi_head.bbox_roi_extractor.roi_layers[0].spatial_scale == 1 / 16
    losses = train_step_and_predict(model, size=(224, 224), boxes=((40., 30., 200., 190.), ), labels=(14, ))
    assert losses['loss_cls'] > 0
    assert model.backbone.features[0].weight.grad is None  # conv1_1 frozen
    assert model.backbone.features[10].weight.grad is not None  # conv3_1 trains


def test_paper_anchors():
    cfg = Config.fromfile(VOC07)
    gen = TASK_UTILS.build(cfg.model.rpn_head.anchor_generator)
    assert gen.num_base_priors == [9]
    (base, ) = gen.base_anchors
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    # Sizes sqrt(w * h) 128 / 256 / 512 px, each at aspect ratios h / w = 0.5, 1, 2.
    sizes, ratios = (w * h).sqrt(), h / w
    expected = sorted((s, r) for s in (128, 256, 512) for r in (0.5, 1., 2.))
    assert sorted(zip(sizes.round().int().tolist(), ratios.tolist())) == expected
    # One set of 9 per cell of the stride-16 map.
    anchors = gen.grid_priors([(3, 4)], device='cpu')[0]
    assert anchors.shape == (3 * 4 * 9, 4)
    torch.testing.assert_close(anchors[9:18] - anchors[:9], torch.tensor([16., 0., 16., 0.]).expand(9, 4))


def test_paper_training_settings():
    cfg = Config.fromfile(VOC07)
    m = cfg.model
    assert m.backbone.type == 'VGG' and m.backbone.depth == 16 and m.backbone.frozen_stages == 2
    assert m.backbone.init_cfg == dict(type='Pretrained', checkpoint='torchvision://vgg16')
    assert m.neck is None and m.rpn_head.in_channels == m.rpn_head.feat_channels == 512
    rpn = m.train_cfg.rpn
    assert (rpn.assigner.pos_iou_thr, rpn.assigner.neg_iou_thr) == (0.7, 0.3)
    assert (rpn.sampler.num, rpn.sampler.pos_fraction, rpn.allowed_border) == (256, 0.5, 0)
    assert m.train_cfg.rpn_proposal.max_per_img == 2000 and m.test_cfg.rpn.max_per_img == 300
    assert m.train_cfg.rpn_proposal.nms.iou_threshold == m.test_cfg.rpn.nms.iou_threshold == 0.7
    rcnn = m.train_cfg.rcnn
    assert rcnn.assigner.pos_iou_thr == 0.5 and tuple(rcnn.assigner.neg_iou_thr) == (0.1, 0.5)
    assert (rcnn.sampler.num, rcnn.sampler.pos_fraction) == (128, 0.25)
    head = m.roi_head.bbox_head
    assert head.fc_out_channels == 4096 and head.num_classes == 20 and head.reg_class_agnostic is False
    assert m.roi_head.bbox_roi_extractor.roi_layer == dict(type='RoIPool', output_size=7)
    resize = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'Resize'][0]
    assert resize.scale == (1000, 600) and resize.keep_ratio
    assert any(t.type == 'RandomFlip' and t.prob == 0.5 for t in cfg.train_dataloader.dataset.pipeline)
    # The schedule: 60k iterations at 0.001, 20k at 0.0001.
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=80000)
    assert cfg.param_scheduler == [dict(type='MultiStepLR', by_epoch=False, begin=0, end=80000,
                                        milestones=[60000], gamma=0.1)]
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005)
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.default_hooks.checkpoint.by_epoch is False and cfg.log_processor.by_epoch is False

    cfg12 = Config.fromfile(VOC0712)
    assert cfg12.model == cfg.model and cfg12.train_cfg == cfg.train_cfg
    datasets = cfg12.train_dataloader.dataset.datasets
    assert [d.ann_file for d in datasets] == ['VOC2007/ImageSets/Main/trainval.txt',
                                             'VOC2012/ImageSets/Main/trainval.txt']
    assert cfg12.test_dataloader.dataset.ann_file == 'VOC2007/ImageSets/Main/test.txt'


@pytest.mark.filterwarnings('ignore:Detected call of `scheduler.step\\(\\)` before')
def test_paper_schedule_runs_by_iteration():
    """The paper's lr steps at iteration 60k (scaled down 1000x here) in mmengine's scheduler."""
    cfg = Config.fromfile(VOC07)
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    net = torch.nn.Linear(2, 2)
    optim = build_optim_wrapper(net, cfg.optim_wrapper)
    # Caffe's convention: biases at 2x lr and no weight decay.
    groups = {len(g['params'][0].shape): g for g in optim.optimizer.param_groups}
    assert groups[1]['lr'] == 0.002 and groups[1]['weight_decay'] == 0 and groups[2]['lr'] == 0.001
    sched = dict(cfg.param_scheduler[0], milestones=[60], end=80)
    scheduler = PARAM_SCHEDULERS.build(dict(sched, optimizer=optim))
    lrs = []
    for _ in range(80):
        lrs.append(groups[2]['lr'])
        scheduler.step()
    assert lrs[59] == pytest.approx(0.001) and lrs[60] == pytest.approx(0.0001) and lrs[79] == pytest.approx(0.0001)


def small_r50(path):
    cfg = Config.fromfile(path)
    init_default_scope('rcnn_plugins')
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def test_luminoth_config_trains_and_predicts():
    cfg, model = small_r50(LUMINOTH)
    layers = model.roi_head.bbox_roi_extractor.roi_layers
    assert all(isinstance(layer, CropAndResize) and layer.crop_size == (14, 14) and layer.output_size == (7, 7)
               for layer in layers)
    assert [layer.spatial_scale for layer in layers] == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    assigner, sampler = model.roi_head.bbox_assigner, model.roi_head.bbox_sampler
    assert assigner.pos_iou_thr == 0.5 and tuple(assigner.neg_iou_thr) == (0.1, 0.5)
    assert (sampler.num, sampler.pos_fraction) == (64, 0.25)
    assert cfg.optim_wrapper.optimizer.lr == 0.001 and cfg.param_scheduler[1].gamma == 0.1
    assert model.roi_head.bbox_head.num_classes == len(cfg.classes)
    train_step_and_predict(model)
    # At most 64 RoIs per image went into the head's losses.
    out = {}

    def hook(module, inputs, outputs):
        out['n'] = inputs[0].shape[0]
    handle = model.roi_head.bbox_head.register_forward_hook(hook)
    model.train()
    model(**batch(model, (160, 192), ((30., 20., 150., 140.), ), (0, ), True), mode='loss')
    handle.remove()
    assert out['n'] <= 64


def test_ohem_config_trains_and_predicts():
    cfg, model = small_r50(OHEM)
    assert cfg.model.train_cfg.rcnn.sampler.type == 'OHEMSampler'
    sampler = model.roi_head.bbox_sampler
    assert isinstance(sampler, OHEMSampler) and sampler.context is model.roi_head
    assert (sampler.num, sampler.pos_fraction) == (512, 0.25)
    train_step_and_predict(model)


def small_head(path, **kwargs):
    return MODELS.build(dict(type='PretrainedFCBBoxHead', fc_checkpoint=str(path), in_channels=8, roi_feat_size=7,
                             fc_out_channels=16, num_classes=3, **kwargs))


def test_pretrained_fc_head_local_file_dropout_and_errors(tmp_path):
    torch.manual_seed(0)
    fc6, fc7 = torch.nn.Linear(8 * 49, 16), torch.nn.Linear(16, 16)
    state = {'classifier.0.weight': fc6.weight, 'classifier.0.bias': fc6.bias,
             'classifier.3.weight': fc7.weight, 'classifier.3.bias': fc7.bias}
    path = tmp_path / 'fcs.pth'
    torch.save(dict(state_dict=state), path)  # an mmengine-style checkpoint: read from its state_dict
    head = small_head(path, dropout=0.5)
    head.init_weights()
    x = torch.rand(5, 8, 7, 7)
    expected = torch.relu(fc7(torch.relu(fc6(x.flatten(1)))))
    head.eval()
    with torch.no_grad():
        cls_score, bbox_pred = head(x)
        torch.testing.assert_close(cls_score, head.fc_cls(expected))
        torch.testing.assert_close(bbox_pred, head.fc_reg(expected))
    head.train()
    assert not torch.equal(head(x)[0], head(x)[0])  # dropout is on while training only

    with pytest.raises(ValueError, match=r'in_channels \* roi_feat_size\*\*2'):
        MODELS.build(dict(type='PretrainedFCBBoxHead', fc_checkpoint=str(path), in_channels=4,
                          fc_out_channels=16, num_classes=3)).init_weights()
    with pytest.raises(KeyError, match='has no fc6.weight'):
        small_head(path, fc_keys=('fc6', 'fc7')).init_weights()
    with pytest.raises(ValueError, match='one checkpoint layer per shared fc'):
        small_head(path, fc_keys=('classifier.0', ))


@pytest.mark.parametrize('path', [VOC07, LUMINOTH], ids=osp.basename)
def test_rcnn_targets_ignore_proposals_under_iou_0_1(path):
    assigner = TASK_UTILS.build(Config.fromfile(path).model.train_cfg.rcnn.assigner)
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 100., 100.]]), labels=torch.tensor([2]))
    # IoU with the gt: 1, 0.5, 0.49, 0.1, 0.09, 0 (boxes [0, 0, 100, w] of area 100 w: IoU = w / 100).
    widths = torch.tensor([100., 50., 49., 10., 9.])
    priors = torch.cat([torch.stack([torch.zeros(5), torch.zeros(5), torch.full((5, ), 100.), widths], 1),
                        torch.tensor([[200., 200., 300., 300.]])])
    res = assigner.assign(InstanceData(priors=priors), gt)
    assert res.gt_inds.tolist() == [1, 1, 0, 0, -1, -1]
    assert res.labels.tolist() == [2, 2, -1, -1, -1, -1]

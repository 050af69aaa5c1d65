"""CrowdDet end to end on tiny inputs: losses finite with gradients reaching every stage, predictions,
and a strict load of a state_dict with MMDetection's key layout (from its zoo key list)."""
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from repo_paths import REPO_ROOT

from rcnn_plugins.structures import DetDataSample

ZOO = os.environ.get('MMDET_ZOO_DIR', osp.join(REPO_ROOT, '..', 'shared', 'mmdet_zoo'))
CONFIGS = ['crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman', 'crowddet-rcnn_refine_r50_fpn_8xb2-30e_crowdhuman']


def build(name):
    from rcnn_plugins.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'crowddet', name + '.py'))
    init_default_scope('rcnn_plugins')
    cfg.model.backbone.init_cfg = None  # no pretrained weights in tests
    # Fewer proposals and RoIs: the step checks the plumbing, not CrowdHuman's workload.
    cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=64)
    cfg.model.train_cfg.rcnn.sampler.num = 64
    cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=64)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def samples():
    s = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1., 1.),
                                    pad_shape=(128, 128), batch_input_shape=(128, 128)))
    s.gt_instances = InstanceData(bboxes=torch.tensor([[20., 20., 50., 110.], [35., 22., 65., 112.]]),
                                  labels=torch.tensor([0, 0]))
    s.ignored_instances = InstanceData(bboxes=torch.tensor([[80., 10., 125., 60.]]), labels=torch.tensor([-1]))
    return [s]


def total_loss(losses):
    return sum(v.sum() for val in losses.values() for v in (val if isinstance(val, list) else [val]))


@pytest.mark.parametrize('name', CONFIGS)
def test_loss_backward_and_predict(name):
    model = build(name)
    assert type(model).__name__ == 'CrowdDet'
    inputs = torch.randn(1, 3, 128, 128)
    model.train()
    losses = model(inputs, samples(), mode='loss')
    expected = {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_rcnn_emd'}
    expected |= {'loss_rcnn_emd_ref'} if 'refine' in name else set()
    assert set(losses) == expected
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()
    for param in ('roi_head.bbox_head.fc_cls.1.weight', 'roi_head.bbox_head.shared_fcs.0.weight',
                  'rpn_head.rpn_conv.weight', 'neck.fpn_convs.0.conv.weight', 'backbone.layer4.2.conv3.weight'):
        grad = dict(model.named_parameters())[param].grad
        assert grad is not None and grad.abs().sum() > 0, param
    model.eval()
    with torch.no_grad():
        pred = model(inputs, samples(), mode='predict')[0].pred_instances
    assert pred.bboxes.shape[1:] == (4,) and len(pred.scores) == len(pred.labels) > 0
    assert (pred.labels == 0).all() and (pred.scores[:-1] >= pred.scores[1:]).all()  # one class, best first
    assert len(pred) <= 2 * 64  # at most k = 2 boxes per proposal


@pytest.mark.parametrize('name', CONFIGS)
def test_strict_load_of_mmdetection_layout(name):
    path = osp.join(ZOO, 'keys', f'crowddet__{name}.json')
    if not osp.exists(path):
        pytest.skip(f'MMDetection zoo key list {path} not found (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    with open(path) as f:
        ref = json.load(f)
    model = build(name)
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(shape, generator=g) if shape else torch.tensor(0))
             for k, shape in ref['state_dict'].items()}
    model.load_state_dict(state, strict=True)
    key = 'roi_head.bbox_head.fc_reg.1.weight'
    assert torch.equal(model.state_dict()[key], state[key])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_loss_and_predict_match_cpu():
    model = build(CONFIGS[1])
    inputs = torch.randn(1, 3, 128, 128)
    model.eval()
    with torch.no_grad():
        cpu = model(inputs, samples(), mode='predict')[0].pred_instances
        model.cuda()
        gpu = model(inputs.cuda(), samples(), mode='predict')[0].pred_instances
    assert len(gpu) == len(cpu)
    torch.testing.assert_close(gpu.scores.cpu(), cpu.scores, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(gpu.bboxes.cpu(), cpu.bboxes, rtol=1e-3, atol=1e-2)
    model.train()
    cuda_samples = [s.to('cuda') for s in samples()]
    losses = model(inputs.cuda(), cuda_samples, mode='loss')
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()


@pytest.mark.slow
def test_learns_two_people_that_plain_nms_would_merge():
    """A ResNet-18 CrowdDet overfits one image of two people overlapping at IoU 0.56 (more than the
    NMS threshold 0.5): after training, each person is matched (IoU >= 0.5) by its own confident
    detection, and the EMD loss has fallen."""
    from rcnn_plugins.registry import MODELS
    from rcnn_plugins.structures import bbox_overlaps
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'crowddet', CONFIGS[0] + '.py'))
    init_default_scope('rcnn_plugins')
    cfg.model.backbone.update(init_cfg=None, depth=18, norm_eval=False, frozen_stages=-1)
    cfg.model.neck.in_channels = [64, 128, 256, 512]
    cfg.model.roi_head.bbox_head.fc_out_channels = 128
    cfg.model.train_cfg.rpn_proposal.update(nms_pre=300, max_per_img=100)
    cfg.model.train_cfg.rcnn.sampler.num = 64
    cfg.model.test_cfg.rpn.update(nms_pre=300, max_per_img=100)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    gts = torch.tensor([[30., 20., 60., 110.], [38., 22., 68., 112.]])
    assert bbox_overlaps(gts[:1], gts[1:]).item() > 0.5
    img = torch.zeros(1, 3, 128, 128)
    img[:, 0, 20:110, 30:60] = 2.0
    img[:, 1, 22:112, 38:68] = 2.0

    def data():
        s = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1., 1.),
                                        pad_shape=(128, 128), batch_input_shape=(128, 128)))
        s.gt_instances = InstanceData(bboxes=gts.clone(), labels=torch.tensor([0, 0]))
        return [s]

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    first = None
    for _ in range(150):
        opt.zero_grad()
        losses = model(img, data(), mode='loss')
        first = float(losses['loss_rcnn_emd']) if first is None else first
        total_loss(losses).backward()
        opt.step()
    assert float(losses['loss_rcnn_emd']) < 0.3 * first
    model.eval()
    with torch.no_grad():
        pred = model(img, data(), mode='predict')[0].pred_instances
    confident = pred.bboxes[pred.scores > 0.3]
    best_iou, best = bbox_overlaps(gts, confident).max(dim=1)
    assert (best_iou >= 0.5).all() and best[0] != best[1], (best_iou, confident)


def test_export_is_refused_with_the_reason():
    from rcnn_plugins.deployment.export_wrapper import DetectorExportWrapper
    with pytest.raises(TypeError, match='cannot export MultiInstanceRoIHead.*eagerly'):
        DetectorExportWrapper(build(CONFIGS[0]))

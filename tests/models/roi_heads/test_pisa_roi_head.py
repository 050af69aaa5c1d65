"""PISARoIHead: the sampler's negative weights replace the negatives' label weights; with ISR and
CARL the losses gain loss_carl; without them and with a plain sampler it equals StandardRoIHead."""
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.roi_heads import PISARoIHead, StandardRoIHead
from rcnn_plugins.structures import DetDataSample

EXTRACTOR = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                 out_channels=4, featmap_strides=[4])
HEAD = dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, num_classes=3)
ASSIGNER = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5)


def _inputs():
    torch.manual_seed(0)
    x = [torch.randn(1, 4, 16, 16)]
    proposals = InstanceData(bboxes=torch.tensor([[4., 4., 30., 30.], [5., 5., 28., 31.], [40., 40., 60., 60.],
                                                  [0., 30., 20., 60.], [33., 2., 63., 20.]]))
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 30., 30.]]), labels=torch.tensor([1]))
    return x, [proposals], [sample]


def test_negative_weights_from_the_sampler_replace_the_label_weights():
    sampler = dict(type='ScoreHLRSampler', num=8, pos_fraction=0.25, add_gt_as_proposals=True, score_thr=0.0)
    head = PISARoIHead(EXTRACTOR, HEAD, train_cfg=dict(assigner=ASSIGNER, sampler=sampler))
    x, proposals, samples = _inputs()
    sampled, _ = head.assign_and_sample(x, proposals, samples)
    torch.manual_seed(1)
    res, weights = sampled[0]
    out = head.bbox_loss(x, [res], [weights])
    num_pos = res.pos_inds.numel()
    label_weights = out['bbox_targets'][1]
    assert weights is not None and weights.numel() == res.neg_inds.numel() > 0
    assert torch.allclose(label_weights[num_pos:], weights)
    assert torch.equal(label_weights[:num_pos], torch.ones(num_pos))


def test_isr_and_carl_add_loss_carl_and_train():
    sampler = dict(type='ScoreHLRSampler', num=8, pos_fraction=0.25, add_gt_as_proposals=True)
    cfg = dict(assigner=ASSIGNER, sampler=sampler, isr=dict(k=2, bias=0), carl=dict(k=1, bias=0.2))
    head = PISARoIHead(EXTRACTOR, HEAD, train_cfg=cfg)
    x, proposals, samples = _inputs()
    losses = head.loss(x, proposals, samples)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'acc', 'loss_carl'}
    total = losses['loss_cls'] + losses['loss_bbox'] + losses['loss_carl']
    assert torch.isfinite(total)
    total.backward()
    assert head.bbox_head.fc_cls.weight.grad.abs().sum() > 0


def test_plain_sampler_without_isr_carl_equals_standard_roi_head():
    cfg = dict(assigner=ASSIGNER, sampler=dict(type='RandomSampler', num=8, pos_fraction=0.25))
    pisa = PISARoIHead(EXTRACTOR, HEAD, train_cfg=cfg)
    std = StandardRoIHead(EXTRACTOR, HEAD, train_cfg=cfg)
    std.load_state_dict(pisa.state_dict())
    x, proposals, samples = _inputs()
    torch.manual_seed(3)
    a = pisa.loss(x, proposals, samples)
    torch.manual_seed(3)
    b = std.loss(x, proposals, samples)
    assert set(a) == set(b) and all(torch.allclose(a[k], b[k]) for k in a)

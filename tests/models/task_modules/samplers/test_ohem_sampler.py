"""OHEMSampler: the highest-loss RoIs on a hand-made case; built by StandardRoIHead with itself as context."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.losses import CrossEntropyLoss
from rcnn_plugins.models.task_modules import AssignResult, OHEMSampler
from rcnn_plugins.registry import MODELS, TASK_UTILS
from rcnn_plugins.structures import DetDataSample

NUM_CLASSES = 3


class HandMadeHead:
    """A stand-in RoI head whose logits are a known function of the RoI's box.

    Background logit = -x1 / 10, class c logit = y1 / 10 if c == (x2 mod 3) else 0: the losses can
    be written down per RoI (``hand_loss``).
    """

    def __init__(self):
        self.bbox_head = type('Head', (), dict(num_classes=NUM_CLASSES, loss_cls=CrossEntropyLoss()))()
        self.calls = []

    @staticmethod
    def logits(boxes):
        x1, y1, x2 = boxes[:, 0], boxes[:, 1], boxes[:, 2]
        fg = torch.zeros(len(boxes), NUM_CLASSES)
        fg[torch.arange(len(boxes)), x2.long() % NUM_CLASSES] = y1 / 10
        return torch.cat([fg, (-x1 / 10)[:, None]], dim=1)

    def _bbox_forward(self, feats, rois):
        self.calls.append((torch.is_grad_enabled(), rois.clone(), feats))
        return self.logits(rois[:, 1:]), None


def hand_loss(boxes, labels):
    """Softmax cross-entropy per RoI, written out: logsumexp(z) - z[label]."""
    z = HandMadeHead.logits(boxes)
    return torch.stack([torch.log(torch.exp(zi).sum()) - zi[li] for zi, li in zip(z, labels)])


def make_case(num_pos=20, num_neg=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = num_pos + num_neg
    xy = torch.randint(0, 100, (n, 2), generator=g).float()
    priors = torch.cat([xy, xy + torch.randint(5, 50, (n, 2), generator=g).float()], dim=1)
    gt_inds = torch.cat([torch.randint(1, 3, (num_pos,), generator=g), torch.zeros(num_neg, dtype=torch.long)])
    perm = torch.randperm(n, generator=g)
    gt_inds = gt_inds[perm]
    gt_labels = torch.tensor([0, 2])
    labels = torch.where(gt_inds > 0, gt_labels[(gt_inds - 1).clamp(min=0)], -1)
    assign = AssignResult(2, gt_inds, torch.zeros(n), labels)
    gts = InstanceData(bboxes=torch.tensor([[0., 0., 30., 30.], [50., 50., 90., 90.]]), labels=gt_labels)
    return InstanceData(priors=priors), gts, assign


def test_picks_the_highest_loss_negatives_and_positives():
    pred, gts, assign = make_case()
    head = HandMadeHead()
    sampler = OHEMSampler(num=32, pos_fraction=0.25, context=head, add_gt_as_proposals=False)
    feats = [torch.zeros(1, 4, 8, 8)]
    res = sampler.sample(assign, pred, gts, feats=feats)

    neg = torch.nonzero(assign.gt_inds == 0).squeeze(1)
    neg_loss = hand_loss(pred.priors[neg], torch.full((len(neg),), NUM_CLASSES))
    expected_neg = neg[neg_loss.argsort(descending=True)[:24]].sort().values
    pos = torch.nonzero(assign.gt_inds > 0).squeeze(1)
    pos_loss = hand_loss(pred.priors[pos], assign.labels[pos])
    expected_pos = pos[pos_loss.argsort(descending=True)[:8]].sort().values
    assert torch.equal(res.pos_inds, expected_pos)
    assert torch.equal(res.neg_inds, expected_neg)
    # The hardest negatives are not what chance would give: every kept one beats every dropped one.
    kept = torch.isin(neg, res.neg_inds)
    assert neg_loss[kept].min() > neg_loss[~kept].max()
    # Scored without gradient, on this image's feature maps, one batch index.
    assert [c[0] for c in head.calls] == [False, False]
    assert all(c[2] is feats for c in head.calls)
    assert all((c[1][:, 0] == 0).all() for c in head.calls)


def test_few_candidates_are_all_kept_without_scoring():
    pred, gts, assign = make_case(num_pos=3, num_neg=10)
    head = HandMadeHead()
    res = OHEMSampler(num=32, pos_fraction=0.25, context=head, add_gt_as_proposals=False).sample(
        assign, pred, gts, feats=[torch.zeros(1, 4, 8, 8)])
    assert res.pos_inds.numel() == 3 and res.neg_inds.numel() == 10
    assert head.calls == []


def test_errors():
    with pytest.raises(TypeError, match='context=the RoI head'):
        OHEMSampler(num=8, pos_fraction=0.25)
    with pytest.raises(ValueError, match="loss_key must be 'loss_cls'"):
        OHEMSampler(num=8, pos_fraction=0.25, context=HandMadeHead(), loss_key='loss_bbox')
    pred, gts, assign = make_case()
    with pytest.raises(ValueError, match='needs feats='):
        OHEMSampler(num=8, pos_fraction=0.25, context=HandMadeHead()).sample(assign, pred, gts)


def test_roi_head_passes_itself_and_trains():
    torch.manual_seed(0)
    roi_head = MODELS.build(dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7),
                                out_channels=8, featmap_strides=[4, 8]),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, num_classes=NUM_CLASSES),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                     match_low_quality=False),
                       sampler=dict(type='OHEMSampler', num=16, pos_fraction=0.25))))
    roi_head.init_weights()
    assert isinstance(roi_head.bbox_sampler, OHEMSampler) and roi_head.bbox_sampler.context is roi_head
    # A RandomSampler built the same way accepts (and ignores) the context.
    assert TASK_UTILS.build(dict(type='RandomSampler', num=4, pos_fraction=0.5), default_args=dict(context=1))

    feats = (torch.randn(2, 8, 16, 16, requires_grad=True), torch.randn(2, 8, 8, 8))
    samples = []
    for _ in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(64, 64)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 40., 40.]]), labels=torch.tensor([1]))
        samples.append(s)
    proposals = [InstanceData(bboxes=torch.cat([torch.rand(60, 2) * 30, torch.rand(60, 2) * 30 + 30], 1))
                 for _ in range(2)]
    losses = roi_head.loss(feats, proposals, samples)
    assert torch.isfinite(losses['loss_cls'])
    losses['loss_cls'].backward()
    assert feats[0].grad is not None

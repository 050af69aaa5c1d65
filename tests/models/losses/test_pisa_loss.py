"""PISA's ISR-P weights and CARL loss on hand cases worked out from the paper's definitions."""
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from rcnn_plugins.models.losses import CrossEntropyLoss, SmoothL1Loss, carl_loss, isr_p
from rcnn_plugins.models.task_modules.coders import DeltaXYWHBBoxCoder

CODER = DeltaXYWHBBoxCoder(target_means=[0.] * 4, target_stds=[1.] * 4)


def test_isr_p_hand_case():
    # Four positives on RoI [0, 0, 10, 10] whose gts are [0, 0, 10, h]: with zero predicted deltas the
    # predicted box is the RoI, so IoU = h / 10. Then one negative.
    heights = torch.tensor([9., 5., 7., 6.])
    roi = torch.tensor([0., 0., 10., 10.])
    gts = torch.stack([torch.tensor([0., 0., 10., h]) for h in heights])
    rois = torch.cat([torch.zeros(5, 1), roi.expand(5, 4)], 1)
    deltas = torch.cat([CODER.encode(roi.expand(4, 4), gts), torch.zeros(1, 4)])
    labels = torch.tensor([0, 0, 0, 1, 2])  # num_class = 2, background 2
    targets = (labels, torch.ones(5), deltas, torch.ones(5, 4))
    res = SimpleNamespace(pos_assigned_gt_inds=torch.tensor([0, 0, 1, 2]))  # p0, p1 share gt 0
    out = isr_p(torch.zeros(5, 3), torch.zeros(5, 8), targets, rois, [res], CrossEntropyLoss(), CODER,
                k=2, bias=0, num_class=2)
    # max_l_num = 3 (class 0). Local ranks: p0 0, p1 1 (gt 0), p2 0, p3 0; keys IoU + 3 - rank:
    # 3.9, 2.5, 3.7, 3.6 -> class-0 ranks p0 0, p2 1, p1 2; class 1: p3 0.
    # weights ((3 - rank) / 3) ** 2 = 1, 1/9, 4/9, 1, scaled by sum(CE) / sum(CE * w) = 4 / (23/9).
    expected = torch.tensor([36., 4., 16., 36.]) / 23
    assert torch.allclose(out[1][:4], expected, atol=1e-5)
    assert out[1][4] == 1.0  # negatives untouched
    assert torch.equal(out[0], labels) and torch.equal(out[2], deltas)
    assert torch.equal(targets[1], torch.ones(5))  # the input weights are not modified in place


def test_isr_p_without_positives_is_the_identity():
    targets = (torch.tensor([2, 2]), torch.ones(2), torch.zeros(2, 4), torch.zeros(2, 4))
    out = isr_p(torch.zeros(2, 3), torch.zeros(2, 8), targets, torch.zeros(2, 5),
                [SimpleNamespace(pos_assigned_gt_inds=torch.zeros(0, dtype=torch.long))], CrossEntropyLoss(), CODER,
                num_class=2)
    assert out is targets or all(torch.equal(a, b) for a, b in zip(out, targets))


def test_carl_loss_hand_case_and_gradient_to_the_classifier():
    cls_score = torch.tensor([[2., 0., 0.], [0., 1., 0.], [0., 0., 3.]], requires_grad=True)
    labels = torch.tensor([0, 1, 2])  # two positives (num_class 2), one negative
    bbox_pred = torch.zeros(3, 8)
    bbox_pred[0, :4] = torch.tensor([0.5, 0., 2., 0.])
    bbox_pred[1, 4:] = torch.tensor([0., -0.2, 0., 1.])
    targets = torch.zeros(3, 4)
    out = carl_loss(cls_score, labels, bbox_pred, targets, SmoothL1Loss(beta=1.0), k=1, bias=0.2, num_class=2)
    p = F.softmax(cls_score.detach(), 1)[[0, 1], [0, 1]]
    w = 0.2 + 0.8 * p
    w = w * 2 / w.sum()

    def sl1(d):
        d = d.abs()
        return torch.where(d < 1, 0.5 * d * d, d - 0.5).sum()
    expected = (w[0] * sl1(bbox_pred[0, :4]) + w[1] * sl1(bbox_pred[1, 4:])) / 3
    assert torch.allclose(out['loss_carl'], expected)
    out['loss_carl'].backward()
    assert cls_score.grad[:2].abs().sum() > 0 and cls_score.grad[2].abs().sum() == 0

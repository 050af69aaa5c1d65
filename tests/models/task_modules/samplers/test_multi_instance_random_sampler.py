"""MultiInsRandomSampler (CrowdDet): counts of positives / negatives, the gt and ignore boxes appended
as proposals (always, as MMDetection), k targets per sampled RoI."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.task_modules.assigners import AssignResult
from rcnn_plugins.models.task_modules.samplers import MultiInsRandomSampler, MultiInstanceSamplingResult

GTS = torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.]])
IGNORES = torch.tensor([[100., 100., 120., 120.]])


def layout(num_pos=5, num_neg=9, num_ign=3):
    """Proposals with a hand-made assignment: label of the best instance 1 / 0 / -1 by blocks; the
    appended candidates (2 gts: positive, 1 ignore box: -1) follow."""
    n = num_pos + num_neg + num_ign
    props = torch.arange(n, dtype=torch.float32)[:, None] + torch.tensor([0., 0., 20., 20.])
    first = torch.tensor([1] * num_pos + [0] * num_neg + [-1] * num_ign + [1, 1, -1])
    second = torch.tensor([i % 2 for i in range(n)] + [0, 0, 0])
    gt_inds = torch.stack([torch.arange(n + 3) % 2, (torch.arange(n + 3) + 1) % 3], 1)
    res = AssignResult(3, gt_inds, torch.rand(n + 3, 2), torch.stack([first, second], 1))
    return props, res


def sample(sampler, props, res):
    return sampler.sample(res, InstanceData(priors=props), InstanceData(bboxes=GTS, labels=torch.tensor([0, 0])),
                          batch_gt_instances_ignore=InstanceData(bboxes=IGNORES))


@pytest.mark.parametrize('num,pos_fraction,neg_pos_ub', [(8, 0.25, -1), (64, 0.5, -1), (8, 0.5, 1), (4, 1.0, -1)])
def test_counts(num, pos_fraction, neg_pos_ub):
    props, res = layout()
    torch.manual_seed(0)
    out = sample(MultiInsRandomSampler(num, pos_fraction, neg_pos_ub=neg_pos_ub, add_gt_as_proposals=False),
                 props, res)
    n = props.size(0)
    candidates_pos = [i for i in range(n + 3) if res.labels[i, 0] > 0]  # 5 proposals + 2 gts
    candidates_neg = [i for i in range(n + 3) if res.labels[i, 0] == 0]
    exp_pos = min(len(candidates_pos), int(num * pos_fraction))
    exp_neg = min(len(candidates_neg), num - exp_pos)
    if neg_pos_ub >= 0:
        exp_neg = min(exp_neg, int(neg_pos_ub * max(1, exp_pos)))
    assert out.pos_inds.numel() == exp_pos and out.neg_inds.numel() == exp_neg
    assert set(out.pos_inds.tolist()) <= set(candidates_pos) and set(out.neg_inds.tolist()) <= set(candidates_neg)
    assert out.pos_inds.tolist() == sorted(set(out.pos_inds.tolist()))  # unique, sorted (MMDetection's unique())


def test_gts_and_ignores_appended_with_k_targets():
    props, res = layout()
    before = res.gt_inds.clone()
    out = sample(MultiInsRandomSampler(64, 0.5, add_gt_as_proposals=False), props, res)
    assert isinstance(out, MultiInstanceSamplingResult)
    n = props.size(0)
    # Every positive is taken (7 < 32): the 5 proposals and the 2 appended gts, after the proposals.
    assert out.pos_inds.tolist() == [0, 1, 2, 3, 4, n, n + 1]
    assert out.pos_is_gt.tolist() == [0] * 5 + [1, 1]
    torch.testing.assert_close(out.pos_priors[-2:], GTS)
    assert out.neg_inds.tolist() == list(range(5, 14))
    # k = 2 targets per RoI, negatives included, indexing cat(gts, ignores).
    boxes = torch.cat([GTS, IGNORES])
    assert out.pos_gt_bboxes.shape == (7, 2, 4) and out.neg_gt_bboxes.shape == (9, 2, 4)
    torch.testing.assert_close(out.pos_gt_bboxes, boxes[res.gt_inds[out.pos_inds]])
    torch.testing.assert_close(out.neg_gt_bboxes, boxes[res.gt_inds[out.neg_inds]])
    assert out.pos_gt_labels.tolist() == res.labels[out.pos_inds].tolist()
    assert out.neg_gt_labels.tolist() == res.labels[out.neg_inds].tolist()
    assert out.pos_assigned_gt_inds.tolist() == res.gt_inds[out.pos_inds].tolist()
    assert torch.equal(res.gt_inds, before)  # the caller's assignment is not modified
    assert out.priors.shape == (16, 4)


def test_mismatched_assignment_is_a_clear_error():
    props, res = layout()
    with pytest.raises(ValueError, match='MultiInstanceAssigner'):
        MultiInsRandomSampler(8, 0.5).sample(res, InstanceData(priors=props),
                                             InstanceData(bboxes=GTS, labels=torch.tensor([0, 0])))

"""RandomSampler / SamplingResult: counts, padding with negatives, gts as proposals, neg_pos_ub."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.task_modules import AssignResult, RandomSampler, SamplingResult
from rcnn_plugins.registry import TASK_UTILS


def make_assign(num_pos, num_neg, num_ignore=0, num_gts=3):
    """AssignResult with the given counts, positives cycling over the gts, in shuffled order."""
    gt_inds = torch.cat([torch.arange(num_pos) % num_gts + 1, torch.zeros(num_neg, dtype=torch.long),
                         torch.full((num_ignore,), -1)])
    gt_inds = gt_inds[torch.randperm(gt_inds.numel())]
    labels = torch.where(gt_inds > 0, (gt_inds - 1) * 10, -1)  # gt k has label 10 k
    max_ov = torch.where(gt_inds > 0, 0.9, 0.1)
    return AssignResult(num_gts, gt_inds, max_ov, labels)


def instances(n, num_gts=3):
    priors = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4) + torch.tensor([0., 0., 5., 5.])
    gts = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.], [40., 40., 50., 50.]])[:num_gts]
    return InstanceData(priors=priors), InstanceData(bboxes=gts, labels=torch.arange(num_gts) * 10)


def check_consistency(res: SamplingResult, assign: AssignResult, priors, gts):
    assert torch.equal(res.pos_priors, priors[res.pos_inds])
    assert torch.equal(res.neg_priors, priors[res.neg_inds])
    assert (assign.gt_inds[res.pos_inds] > 0).all() and (assign.gt_inds[res.neg_inds] == 0).all()
    assert torch.equal(res.pos_assigned_gt_inds, assign.gt_inds[res.pos_inds] - 1)
    assert torch.equal(res.pos_gt_bboxes, gts[res.pos_assigned_gt_inds])
    assert torch.equal(res.pos_gt_labels, res.pos_assigned_gt_inds * 10)
    assert torch.equal(res.priors, torch.cat([res.pos_priors, res.neg_priors]))
    # distinct, sorted indices
    for inds in (res.pos_inds, res.neg_inds):
        assert torch.equal(inds, inds.unique())


def test_balanced_batch():
    torch.manual_seed(0)
    sampler = TASK_UTILS.build(dict(type='RandomSampler', num=256, pos_fraction=0.5, add_gt_as_proposals=False))
    assign = make_assign(num_pos=500, num_neg=3000, num_ignore=100)
    pred, gt = instances(3600)
    res = sampler.sample(assign, pred, gt)
    assert res.pos_inds.numel() == 128 and res.neg_inds.numel() == 128
    assert res.num_pos == 128 and res.num_neg == 128 and res.avg_factor == 256
    assert res.pos_is_gt.dtype == torch.uint8 and not res.pos_is_gt.any()
    check_consistency(res, assign, pred.priors, gt.bboxes)
    # Random: another draw picks other positives.
    res2 = sampler.sample(assign, pred, gt)
    assert not torch.equal(res.pos_inds, res2.pos_inds)


def test_few_positives_padded_with_negatives():
    sampler = RandomSampler(256, 0.5, add_gt_as_proposals=False)
    assign = make_assign(num_pos=10, num_neg=1000)
    pred, gt = instances(1010)
    res = sampler.sample(assign, pred, gt)
    assert res.pos_inds.numel() == 10 and res.neg_inds.numel() == 246
    # all positives are taken
    assert torch.equal(res.pos_inds, torch.nonzero(assign.gt_inds > 0).reshape(-1))
    check_consistency(res, assign, pred.priors, gt.bboxes)


def test_rcnn_fraction_and_too_few_candidates():
    sampler = RandomSampler(512, 0.25, add_gt_as_proposals=False)
    pred, gt = instances(2000)
    res = sampler.sample(make_assign(num_pos=300, num_neg=1700), pred, gt)
    assert (res.pos_inds.numel(), res.neg_inds.numel()) == (128, 384)
    # Fewer candidates than asked: all of them, batch not full.
    pred, gt = instances(60)
    res = sampler.sample(make_assign(num_pos=20, num_neg=30, num_ignore=10), pred, gt)
    assert (res.pos_inds.numel(), res.neg_inds.numel()) == (20, 30)


def test_add_gt_as_proposals():
    sampler = RandomSampler(16, 0.5, add_gt_as_proposals=True)
    assign = make_assign(num_pos=0, num_neg=100)
    pred, gt = instances(100)
    res = sampler.sample(assign, pred, gt)
    # The 3 gts are prepended and are the only positives, matched to themselves.
    assert res.pos_inds.tolist() == [0, 1, 2]
    assert res.pos_is_gt.tolist() == [1, 1, 1]
    assert torch.equal(res.pos_priors, gt.bboxes) and torch.equal(res.pos_gt_bboxes, gt.bboxes)
    assert res.pos_assigned_gt_inds.tolist() == [0, 1, 2] and res.pos_gt_labels.tolist() == [0, 10, 20]
    assert res.neg_inds.numel() == 13 and (res.neg_inds >= 3).all()
    assert assign.num_preds == 103  # add_gt_ modified the assignment in place
    check_consistency(res, assign, torch.cat([gt.bboxes, pred.priors]), gt.bboxes)


def test_neg_pos_ub():
    pred, gt = instances(1000)
    sampler = RandomSampler(256, 0.5, neg_pos_ub=3, add_gt_as_proposals=False)
    res = sampler.sample(make_assign(num_pos=10, num_neg=990), pred, gt)
    assert (res.pos_inds.numel(), res.neg_inds.numel()) == (10, 30)
    # No positives: max(1, 0) * 3 negatives, num_pos reported as 1.
    res = sampler.sample(make_assign(num_pos=0, num_neg=1000), pred, gt)
    assert (res.pos_inds.numel(), res.neg_inds.numel()) == (0, 3)
    assert res.num_pos == 1 and res.avg_factor == 4


def test_no_gts():
    sampler = RandomSampler(8, 0.5, add_gt_as_proposals=True)
    pred, _ = instances(20)
    gt = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    assign = AssignResult(0, torch.zeros(20, dtype=torch.long), torch.zeros(20), torch.full((20,), -1))
    res = sampler.sample(assign, pred, gt)
    assert res.pos_inds.numel() == 0 and res.neg_inds.numel() == 8
    assert res.pos_gt_bboxes.shape == (0, 4) and res.priors.shape == (8, 4)


def test_bad_config():
    with pytest.raises(ValueError, match='pos_fraction'):
        RandomSampler(256, 1.5)

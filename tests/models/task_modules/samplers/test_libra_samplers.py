"""Libra R-CNN's samplers on hand-made pools whose IoU bins and per-instance quotas are known, and
PseudoSampler; the counts asserted follow from MMDetection's rules worked out by hand."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.task_modules.assigners import AssignResult
from rcnn_plugins.models.task_modules.samplers import (
    InstanceBalancedPosSampler,
    IoUBalancedNegSampler,
    PseudoSampler,
)
from rcnn_plugins.registry import TASK_UTILS


def pool(ious, gt_inds):
    """AssignResult over len(ious) priors."""
    ious = torch.tensor(ious, dtype=torch.float32)
    gt_inds = torch.tensor(gt_inds, dtype=torch.long)
    labels = torch.where(gt_inds > 0, torch.zeros_like(gt_inds), -1)
    return AssignResult(int(gt_inds.max().clamp(min=0)), gt_inds, ious, labels)


def test_iou_balanced_neg_bins_floor_thr_minus_one():
    # One positive at IoU 1 (max IoU -> bins [0, 1/3), [1/3, 2/3), [2/3, 1)); negatives:
    # 30 at IoU 0 (floor set), 20 at 0.1 (bin 0), 20 at 0.45 (bin 1), none in bin 2.
    ious = [1.0] + [0.0] * 30 + [0.1] * 20 + [0.45] * 20
    res = pool(ious, [1] + [0] * 70)
    sampler = IoUBalancedNegSampler(num=64, pos_fraction=0.25, floor_thr=-1, floor_fraction=0, num_bins=3)
    for seed in range(20):
        torch.manual_seed(seed)
        inds = sampler._sample_neg(res, 9)
        picked = res.max_overlaps[inds]
        # 9 wanted, all from the IoU set (IoU > 0): 3 per non-empty bin, then 3 more at random from
        # the IoU set; the floor set gets 9 - 9 = 0.
        assert inds.numel() == 9 and inds.unique().numel() == 9 and (res.gt_inds[inds] == 0).all()
        assert (picked > 0).all()
        assert (picked == 0.1).sum() >= 3 and (picked == 0.45).sum() >= 3
        assert torch.equal(inds, inds.sort().values)
    # floor_thr=-1 acts as MMDetection's sampler does from its second call on (floor_thr 0).
    assert sampler.floor_thr == -1


def test_iou_balanced_neg_floor_fraction_exact_counts():
    # Positive at 0.6 -> with floor_thr 0.2 and 2 bins: [0.2, 0.4), [0.4, 0.6).
    ious = [0.6] + [0.05] * 10 + [0.25] * 10 + [0.45] * 10
    res = pool(ious, [1] + [0] * 30)
    sampler = IoUBalancedNegSampler(num=64, pos_fraction=0.25, floor_thr=0.2, floor_fraction=0.5, num_bins=2)
    for seed in range(10):
        torch.manual_seed(seed)
        picked = res.max_overlaps[sampler._sample_neg(res, 8)]
        # 8 wanted: int(8 * 0.5) = 4 IoU-balanced, 2 per bin; the other 4 from the floor set.
        counts = [int((picked == v).sum()) for v in (0.05, 0.25, 0.45)]
        assert counts == [4, 2, 2]
    # Few negatives: all of them; one bin: plain random among the IoU set.
    assert torch.equal(sampler._sample_neg(res, 100), torch.arange(1, 31))
    one_bin = IoUBalancedNegSampler(num=64, pos_fraction=0.25, floor_thr=0.2, floor_fraction=0.5, num_bins=1)
    picked = res.max_overlaps[one_bin._sample_neg(res, 8)]
    assert int((picked == 0.05).sum()) == 4 and int((picked >= 0.2).sum()) == 4


def test_iou_balanced_neg_rejects_bad_args():
    with pytest.raises(AssertionError):
        IoUBalancedNegSampler(num=8, pos_fraction=0.5, floor_thr=-0.5)
    with pytest.raises(ValueError):
        IoUBalancedNegSampler(num=8, pos_fraction=0.5, num_bins=0)


def test_instance_balanced_pos_quota():
    # gt 1: 20 positives, gt 2: 3, gt 3: 1. 12 wanted -> round(12 / 3) + 1 = 5 per gt:
    # 5 + 3 + 1 = 9, then 3 more at random from what is left (gt 1 only).
    res = pool([0.7] * 24 + [0.1] * 5, [1] * 20 + [2] * 3 + [3] + [0] * 5)
    sampler = InstanceBalancedPosSampler(num=48, pos_fraction=0.25)
    for seed in range(10):
        torch.manual_seed(seed)
        inds = sampler._sample_pos(res, 12)
        per_gt = torch.bincount(res.gt_inds[inds], minlength=4).tolist()
        assert per_gt == [0, 8, 3, 1] and inds.unique().numel() == 12
    # 3 gts with 10 each, 4 wanted: quota round(4/3) + 1 = 2 -> 6 picked, cut to 4 at random.
    res = pool([0.7] * 30, [1] * 10 + [2] * 10 + [3] * 10)
    for seed in range(10):
        torch.manual_seed(seed)
        per_gt = torch.bincount(res.gt_inds[sampler._sample_pos(res, 4)], minlength=4)
        assert per_gt.sum() == 4 and per_gt.max() <= 2
    # Python's round: 5 / 2 = 2.5 rounds to 2, quota 3 (round-half-up would allow 4).
    res = pool([0.7] * 20, [1] * 10 + [2] * 10)
    for seed in range(10):
        torch.manual_seed(seed)
        per_gt = torch.bincount(res.gt_inds[sampler._sample_pos(res, 5)], minlength=3)
        assert per_gt.sum() == 5 and per_gt.max() <= 3


def test_combined_sampler_libra_config_end_to_end():
    cfg = dict(type='CombinedSampler', num=16, pos_fraction=0.25, add_gt_as_proposals=True,
               pos_sampler=dict(type='InstanceBalancedPosSampler'),
               neg_sampler=dict(type='IoUBalancedNegSampler', floor_thr=-1, floor_fraction=0, num_bins=3))
    sampler = TASK_UTILS.build(cfg, default_args=dict(context=object()))  # the RoI head passes itself
    assert isinstance(sampler.pos_sampler, InstanceBalancedPosSampler)
    assert isinstance(sampler.neg_sampler, IoUBalancedNegSampler) and sampler.neg_sampler.num == 16
    # 2 gts; 10 positives of gt 1, 1 of gt 2; 40 negatives (20 at IoU 0, 20 at 0.4).
    res = pool([0.8] * 11 + [0.0] * 20 + [0.4] * 20, [1] * 10 + [2] + [0] * 40)
    priors = torch.rand(51, 4) * 10
    priors[:, 2:] += priors[:, :2]
    gts = InstanceData(bboxes=torch.tensor([[0., 0., 5., 5.], [1., 1., 6., 6.]]), labels=torch.tensor([3, 7]))
    torch.manual_seed(0)
    out = sampler.sample(res, InstanceData(priors=priors), gts)
    # 4 positives wanted out of 13 (2 gts prepended): quota round(4/2) + 1 = 3 per gt, 6 > 4 -> cut to 4.
    assert out.pos_inds.numel() == 4 and out.neg_inds.numel() == 12
    assert torch.bincount(out.pos_assigned_gt_inds, minlength=2).max() <= 3
    # Negatives: 12 wanted; bins over [0, 1): int(12 / 3) = 4 from bin [1/3, 2/3) (IoU 0.4), the
    # rest of the IoU set (IoU > 0) is only 20 at 0.4 -> 12 from there, none at IoU 0.
    assert (res.max_overlaps[out.neg_inds] == 0.4).all()
    # The prepended gts carry their own labels.
    is_gt = out.pos_is_gt.bool()
    assert out.pos_gt_labels[is_gt].tolist() == [[3, 7][int(g)] for g in out.pos_assigned_gt_inds[is_gt]]


def test_pseudo_sampler_takes_everything():
    res = pool([0.8, 0.1, 0.5, 0.0, 0.9], [1, 0, -1, 0, 2])
    priors = torch.tensor([[0., 0., 2., 2.]] * 5)
    gts = InstanceData(bboxes=torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.]]), labels=torch.tensor([0, 1]))
    out = PseudoSampler(context=None, num=3).sample(res, InstanceData(priors=priors), gts)
    assert out.pos_inds.tolist() == [0, 4] and out.neg_inds.tolist() == [1, 3]
    assert out.avg_factor == 2  # positives only
    assert out.pos_gt_bboxes.tolist() == [[0., 0., 2., 2.], [1., 1., 3., 3.]]

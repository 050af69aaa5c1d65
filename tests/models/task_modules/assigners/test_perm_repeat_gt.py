"""MaxIoUAssigner(perm_repeat_gt_cfg=...): exactly repeated gts are jittered apart so that each
copy can win priors; unique gts and the targets stay untouched."""
import torch
from mmengine.structures import InstanceData
from torchvision.ops import box_iou

from rcnn_plugins.models.task_modules.assigners import MaxIoUAssigner
from rcnn_plugins.models.task_modules.assigners.max_iou_assigner import perm_repeat_bboxes


def test_jitter_only_repeated_and_within_iou():
    torch.manual_seed(0)
    gts = torch.tensor([[10., 10., 50., 60.], [10., 10., 50., 60.], [0., 0., 5., 5.], [10., 10., 50., 60.]])
    out = perm_repeat_bboxes(gts, dict(iou_thr=0.9, perm_range=0.05))
    assert torch.equal(out[2], gts[2])  # unique box untouched
    assert not torch.equal(out[0], out[1]) and not torch.equal(out[1], out[3])
    iou = box_iou(gts, out).diagonal()
    assert (iou >= 0.9).all() and ((out[:, 2:] - out[:, :2]) > 0).all()
    # The factor is per coordinate within [1 - r, 1 + r].
    ratio = out[[0, 1, 3]] / gts[[0, 1, 3]]
    assert ((ratio >= 0.95 - 1e-6) & (ratio <= 1.05 + 1e-6)).all()
    # Nothing repeated: identical output.
    assert torch.equal(perm_repeat_bboxes(gts[1:3], dict()), gts[1:3])


def test_each_repeated_gt_wins_priors():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    base = torch.tensor([100., 100., 200., 180.])
    priors = base + (torch.rand(300, 4, generator=g) - 0.5) * 30
    gt = InstanceData(bboxes=base.repeat(2, 1), labels=torch.tensor([4, 9]))
    kwargs = dict(pos_iou_thr=0.5, neg_iou_thr=0.4, match_low_quality=False)  # the RoI head's setting
    plain = MaxIoUAssigner(**kwargs).assign(InstanceData(priors=priors), gt)
    assert set(plain.gt_inds[plain.gt_inds > 0].tolist()) == {1}  # the copy never wins
    perm = MaxIoUAssigner(**kwargs, perm_repeat_gt_cfg=dict(iou_thr=0.7, perm_range=0.01)).assign(
        InstanceData(priors=priors), gt)
    won = perm.gt_inds[perm.gt_inds > 0]
    assert (won == 2).sum() > 30 and (won == 1).sum() > 30
    assert set(won.tolist()) == {1, 2} and set(perm.labels[perm.gt_inds > 0].tolist()) == {4, 9}
    # Positives are the same priors (the jitter moves boxes by about 1 %).
    assert ((perm.gt_inds > 0) == (plain.gt_inds > 0)).float().mean() > 0.95

"""MultiInstanceAssigner (CrowdDet): each candidate's top-k gts, ignore boxes by IoF, MMDetection's rules.

Expected assignments are worked out by hand on a small layout, and on random layouts by a slow
per-candidate reference written here from the rules (MMDetection's loop-free code read as prose)."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.task_modules.assigners import MultiInstanceAssigner


def make(**kw):
    cfg = dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.3, match_low_quality=False, ignore_iof_thr=-1)
    cfg.update(kw)
    return MultiInstanceAssigner(**cfg)


A, B, IGN = [0., 0., 10., 10.], [5., 0., 15., 10.], [100., 100., 120., 120.]


def test_hand_layout_top2_and_ignore():
    priors = torch.tensor([[0., 0., 10., 10.],      # = A: IoU A 1, B 1/3
                           [2., 0., 12., 10.],      # IoU A 80/120, B 70/130: both positive
                           [105., 105., 115., 115.],  # inside the ignore box (IoF 1)
                           [50., 50., 60., 60.]])   # nothing
    gt = InstanceData(bboxes=torch.tensor([A, B]), labels=torch.tensor([0, 0]))
    ign = InstanceData(bboxes=torch.tensor([IGN]))  # no labels: -1
    res = make().assign(InstanceData(priors=priors), gt, ign)
    # Candidates: 4 priors, then A, B, IGN themselves. Targets: A=0, B=1, IGN=2. Inside the ignore box,
    # rank 0 takes the ignore box (normal IoU 0 < IoF 1); rank 1 keeps the normal second best (B, IoU 0).
    assert res.num_gts == 3
    assert res.gt_inds.tolist() == [[0, 1], [0, 1], [2, 1], [0, 1], [0, 1], [1, 0], [2, 1]]
    assert res.labels.tolist() == [[1, 0], [1, 1], [-1, 0], [0, 0], [1, 0], [1, 0], [-1, 0]]
    expected = torch.tensor([[1, 1 / 3], [80 / 120, 70 / 130], [1, 0], [0, 0], [1, 1 / 3], [1, 1 / 3], [1, 0]])
    torch.testing.assert_close(res.max_overlaps, expected)


def test_one_gt_pads_the_second_instance_with_background():
    gt = InstanceData(bboxes=torch.tensor([A]), labels=torch.tensor([0]))
    res = make().assign(InstanceData(priors=torch.tensor([A, [1., 0., 11., 10.]])), gt, None)
    assert res.labels.shape == (3, 2)
    assert res.labels.tolist() == [[1, 0], [1, 0], [1, 0]]
    assert res.max_overlaps[:, 1].tolist() == [0, 0, 0]


def test_no_boxes_at_all_is_background():
    gt = InstanceData(bboxes=torch.zeros((0, 4)), labels=torch.zeros((0,), dtype=torch.long))
    res = make(num_instance=3).assign(InstanceData(priors=torch.tensor([A, B])), gt, None)
    assert res.num_gts == 0 and res.labels.tolist() == [[0, 0, 0]] * 2 and res.gt_inds.tolist() == [[0, 0, 0]] * 2


def iou(a, b):
    iw = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter + 1e-6), inter / (area_a + 1e-6)


def reference(priors, gts, gt_labels, ignores, k, pos_thr, neg_thr):
    """Per candidate: rank the normal targets by IoU and the ignore targets by IoF; rank r of each
    is compared; then thresholds. Plain Python."""
    boxes = gts + ignores
    labels = [lab + 1 for lab in gt_labels] + [-1] * len(ignores)
    out = []
    for cand in priors + boxes:
        normal = sorted(((iou(cand, b)[0] if labels[j] != -1 else 0., j) for j, b in enumerate(boxes)),
                        key=lambda t: -t[0])
        ignore = sorted(((iou(cand, b)[1] if labels[j] == -1 else 0., j) for j, b in enumerate(boxes)),
                        key=lambda t: -t[0])
        row = []
        for r in range(k):
            (nv, nj), (iv, ij) = normal[r], ignore[r]
            ov, j = (iv, ij) if (nv < pos_thr and iv > nv) else (nv, nj)
            lab = labels[j]
            if ov >= pos_thr and lab != -1:
                lab = 1
            if 0 <= ov < neg_thr:
                lab = 0
            row.append((j, lab, ov))
        out.append(row)
    return out


@pytest.mark.parametrize('gpu_assign_thr', [-1, 1])  # 1: the "many gts" path (matrices on the CPU)
def test_random_layouts_match_reference(gpu_assign_thr):
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        def boxes(n, size=40.):
            xy = torch.rand(n, 2, generator=g) * 60
            wh = 5 + torch.rand(n, 2, generator=g) * size
            return torch.cat([xy, xy + wh], 1)
        gts, ignores = boxes(4), boxes(2, 60.)
        # Proposals near the gts so that positives exist.
        priors = torch.cat([gts + torch.randn(4, 4, generator=g) * 3, boxes(12)])
        gt = InstanceData(bboxes=gts, labels=torch.randint(0, 3, (4,), generator=g))
        assigner = make(pos_iou_thr=0.5, neg_iou_thr=0.4, gpu_assign_thr=gpu_assign_thr)
        res = assigner.assign(InstanceData(priors=priors), gt, InstanceData(bboxes=ignores))
        ref = reference(priors.tolist(), gts.tolist(), gt.labels.tolist(), ignores.tolist(), 2, 0.5, 0.4)
        assert res.gt_inds.tolist() == [[j for j, _, _ in row] for row in ref], trial
        assert res.labels.tolist() == [[lab for _, lab, _ in row] for row in ref], trial
        torch.testing.assert_close(res.max_overlaps, torch.tensor([[ov for _, _, ov in row] for row in ref]),
                                   rtol=1e-5, atol=1e-5)
        # Between the thresholds a target keeps its (class + 1) label, as MMDetection's.
        assert set(res.labels.unique().tolist()) <= {-1, 0, 1, 2, 3}

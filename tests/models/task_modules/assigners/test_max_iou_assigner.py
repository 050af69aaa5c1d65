"""MaxIoUAssigner / AssignResult / BboxOverlaps2D against hand cases and a slow reference loop."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.task_modules import AssignResult, BboxOverlaps2D, MaxIoUAssigner
from rcnn_plugins.registry import TASK_UTILS


def reference_assign(priors, gt_bboxes, gt_labels, pos_iou_thr, neg_iou_thr, min_pos_iou=0.,
                     gt_max_assign_all=True, match_low_quality=True, ignore_bboxes=None, ignore_iof_thr=-1):
    """Slow, loop-by-loop restatement of MMDetection's rules, IoU computed per pair in Python."""
    def iou(a, b, mode='iou'):
        iw = max(0., min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0., min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        area_a = (a[2] - a[0]) * (a[3] - a[1])
        area_b = (b[2] - b[0]) * (b[3] - b[1])
        denom = area_a if mode == 'iof' else area_a + area_b - inter
        return inter / max(denom, 1e-6)

    P, G = priors.tolist(), gt_bboxes.tolist()
    ov = [[iou(g, p) for p in P] for g in G]
    if ignore_iof_thr > 0 and ignore_bboxes is not None:
        for n, p in enumerate(P):
            if max(iou(p, ig, 'iof') for ig in ignore_bboxes.tolist()) > ignore_iof_thr:
                for g in range(len(G)):
                    ov[g][n] = -1.
    N = len(P)
    inds = [-1] * N
    max_ov = [0.] * N
    for n in range(N):
        col = [ov[g][n] for g in range(len(G))]
        m = max(col)
        max_ov[n] = m
        lo, hi = (0., neg_iou_thr) if not isinstance(neg_iou_thr, tuple) else neg_iou_thr
        if lo <= m < hi:
            inds[n] = 0
        if m >= pos_iou_thr:
            inds[n] = col.index(m) + 1
    if match_low_quality:
        for g in range(len(G)):
            best = max(ov[g])
            if best >= min_pos_iou:
                if gt_max_assign_all:
                    for n in range(N):
                        if ov[g][n] == best:
                            inds[n] = g + 1
                else:
                    inds[ov[g].index(best)] = g + 1
    labels = [gt_labels[i - 1].item() if i > 0 else -1 for i in inds]
    return torch.tensor(inds), torch.tensor(max_ov), torch.tensor(labels)


def run(assigner, priors, gts, labels, ignore=None):
    ign = None if ignore is None else InstanceData(bboxes=ignore)
    return assigner.assign(InstanceData(priors=priors), InstanceData(bboxes=gts, labels=labels), ign)


def random_boxes(n, size=100., gen=None, quantize=None):
    xy = torch.rand(n, 2, generator=gen) * size
    wh = torch.rand(n, 2, generator=gen) * size / 2 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    return boxes if quantize is None else (boxes / quantize).round() * quantize


def test_hand_case():
    # gt 0 = [0,0,10,10]. prior 0 identical (IoU 1); prior 1 [0,0,10,5] IoU 0.5; prior 2 far away;
    # prior 3 [5,0,15,10]: inter 50, union 150 -> IoU 1/3.
    gts = torch.tensor([[0., 0., 10., 10.]])
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.], [50., 50., 60., 60.], [5., 0., 15., 10.]])
    a = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3)
    r = run(a, priors, gts, torch.tensor([7]))
    assert r.gt_inds.tolist() == [1, -1, 0, -1]
    assert r.labels.tolist() == [7, -1, -1, -1]
    torch.testing.assert_close(r.max_overlaps, torch.tensor([1., 0.5, 0., 1 / 3]))
    assert r.num_gts == 1 and r.num_preds == 4
    # Tuple negative range [0.2, 0.4): the IoU-1/3 prior is negative, the IoU-0 one ignored.
    r = run(MaxIoUAssigner(0.7, (0.2, 0.4)), priors, gts, torch.tensor([7]))
    assert r.gt_inds.tolist() == [1, -1, -1, 0]


def test_low_quality_match_gives_every_gt_a_prior():
    # Neither gt reaches pos_iou_thr with any prior; low-quality matching still assigns each its best.
    gts = torch.tensor([[0., 0., 10., 10.], [100., 100., 110., 110.]])
    priors = torch.tensor([[0., 0., 10., 20.], [100., 100., 110., 125.], [200., 200., 210., 210.]])
    r = run(MaxIoUAssigner(0.7, 0.3, min_pos_iou=0.3), priors, gts, torch.tensor([1, 2]))
    assert r.gt_inds.tolist() == [1, 2, 0]  # IoU 0.5 and 0.4 >= 0.3
    r = run(MaxIoUAssigner(0.7, 0.3, min_pos_iou=0.45), priors, gts, torch.tensor([1, 2]))
    assert r.gt_inds.tolist() == [1, -1, 0]  # 0.4 < 0.45: gt 1 left unmatched, prior ignored
    r = run(MaxIoUAssigner(0.7, 0.3, match_low_quality=False), priors, gts, torch.tensor([1, 2]))
    assert r.gt_inds.tolist() == [-1, -1, 0]


@pytest.mark.parametrize('gt_max_assign_all', [True, False])
@pytest.mark.parametrize('seed', range(4))
def test_matches_reference_loop_on_random_boxes(seed, gt_max_assign_all):
    g = torch.Generator().manual_seed(seed)
    # Quantized coordinates create exact IoU ties (also between gts), where "later gt wins" matters.
    priors = random_boxes(300, gen=g, quantize=5.)
    gts = torch.cat([random_boxes(6, gen=g, quantize=5.), priors[:2]])  # dup boxes -> ties
    gts = torch.cat([gts, gts[-1:]])  # an exact duplicate gt: the later one must win
    labels = torch.randint(0, 5, (gts.shape[0],), generator=g)
    for min_pos_iou in (0., 0.3):
        a = MaxIoUAssigner(0.5, 0.4, min_pos_iou=min_pos_iou, gt_max_assign_all=gt_max_assign_all)
        r = run(a, priors, gts, labels)
        inds, max_ov, lab = reference_assign(priors, gts, labels, 0.5, 0.4, min_pos_iou, gt_max_assign_all)
        assert torch.equal(r.gt_inds, inds)
        assert torch.equal(r.labels, lab)
        torch.testing.assert_close(r.max_overlaps, max_ov)
    # priors[1] is the best match of the last two (identical) gts: the later one claims it.
    if gt_max_assign_all:
        assert r.gt_inds[1].item() == gts.shape[0]


def test_ignore_regions_match_reference():
    g = torch.Generator().manual_seed(0)
    priors = random_boxes(200, gen=g)
    gts = random_boxes(5, gen=g)
    labels = torch.arange(5)
    ignore = torch.tensor([[0., 0., 40., 40.]])
    a = MaxIoUAssigner(0.5, 0.4, min_pos_iou=-1., ignore_iof_thr=0.5)
    r = run(a, priors, gts, labels, ignore)
    inds, max_ov, lab = reference_assign(priors, gts, labels, 0.5, 0.4, -1., ignore_bboxes=ignore,
                                         ignore_iof_thr=0.5)
    assert torch.equal(r.gt_inds, inds)
    assert torch.equal(r.labels, lab)


def test_ignore_iof_hand_case():
    gts = torch.tensor([[50., 50., 60., 60.]])
    priors = torch.tensor([[0., 0., 10., 10.], [8., 0., 18., 10.], [50., 50., 60., 60.]])
    ignore = torch.tensor([[0., 0., 12., 12.]])
    # wrt candidates: prior 0 IoF 1, prior 1 IoF (4*10)/100 = 0.4.
    r = run(MaxIoUAssigner(0.7, 0.3, ignore_iof_thr=0.5), priors, gts, torch.tensor([0]), ignore)
    assert r.gt_inds.tolist() == [-1, 0, 1]
    # wrt the ignore box (area 144): prior 0 IoF 100/144 = 0.69, prior 1 40/144 = 0.28.
    r = run(MaxIoUAssigner(0.7, 0.3, ignore_iof_thr=0.3, ignore_wrt_candidates=False), priors, gts,
            torch.tensor([0]), ignore)
    assert r.gt_inds.tolist() == [-1, 0, 1]
    # A prior both inside an ignore region and matching a gt: the ignore step comes first and
    # wipes its IoUs (to -1), so it is not positive.
    r = run(MaxIoUAssigner(0.7, 0.3, min_pos_iou=0.3, ignore_iof_thr=0.5), priors, gts, torch.tensor([0]),
            torch.tensor([[45., 45., 65., 65.]]))
    assert r.gt_inds.tolist() == [0, 0, -1]
    # MMDetection quirk kept: with min_pos_iou=0 the gt's best IoU is now 0, so every prior at
    # IoU 0 is a "low-quality match" of it.
    r = run(MaxIoUAssigner(0.7, 0.3, min_pos_iou=0., ignore_iof_thr=0.5), priors, gts, torch.tensor([0]),
            torch.tensor([[45., 45., 65., 65.]]))
    assert r.gt_inds.tolist() == [1, 1, -1]


def test_no_gts_and_no_priors():
    a = MaxIoUAssigner(0.7, 0.3)
    priors = torch.tensor([[0., 0., 10., 10.], [5., 5., 9., 9.]])
    r = run(a, priors, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert r.gt_inds.tolist() == [0, 0] and r.labels.tolist() == [-1, -1]
    assert r.max_overlaps.tolist() == [0., 0.] and r.num_gts == 0
    r = run(a, torch.zeros(0, 4), torch.tensor([[0., 0., 1., 1.]]), torch.tensor([3]))
    assert r.gt_inds.shape == (0,) and r.labels.shape == (0,) and r.num_preds == 0


def test_gpu_assign_thr_is_accepted_and_gives_the_same_result():
    g = torch.Generator().manual_seed(1)
    priors, gts = random_boxes(50, gen=g), random_boxes(4, gen=g)
    labels = torch.arange(4)
    r1 = run(MaxIoUAssigner(0.5, 0.4), priors, gts, labels)
    r2 = run(MaxIoUAssigner(0.5, 0.4, gpu_assign_thr=2), priors, gts, labels)
    assert torch.equal(r1.gt_inds, r2.gt_inds) and r2.gt_inds.device == priors.device


def test_assign_result_add_gt():
    r = AssignResult(2, torch.tensor([0, 2, -1]), torch.tensor([0.1, 0.8, 0.35]), torch.tensor([-1, 5, -1]))
    r.add_gt_(torch.tensor([4, 5]))
    assert r.gt_inds.tolist() == [1, 2, 0, 2, -1]
    assert r.labels.tolist() == [4, 5, -1, 5, -1]
    torch.testing.assert_close(r.max_overlaps, torch.tensor([1., 1., 0.1, 0.8, 0.35]))
    assert r.num_preds == 5 and r.info['num_gts'] == 2


def test_iou_calculator():
    calc = TASK_UTILS.build(dict(type='BboxOverlaps2D'))
    assert isinstance(calc, BboxOverlaps2D)
    a = torch.tensor([[0., 0., 10., 10.]])
    b = torch.tensor([[5., 0., 15., 10., 0.9], [0., 0., 5., 5., 0.3]])  # score column dropped
    torch.testing.assert_close(calc(a, b), torch.tensor([[50 / 150, 25 / 100]]))
    torch.testing.assert_close(calc(b, a, mode='iof'), torch.tensor([[0.5], [1.0]]))
    with pytest.raises(ValueError, match='columns'):
        calc(a, torch.zeros(2, 3))


def test_bad_neg_iou_thr():
    with pytest.raises(TypeError, match='neg_iou_thr'):
        MaxIoUAssigner(0.7, (0.1, 0.2, 0.3))

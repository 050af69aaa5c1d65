"""RegionAssigner on a hand-made anchor / gt layout and against a loop of MMDetection's
sequential per-gt writes."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.registry import TASK_UTILS

SIZES = [(8, 8), (4, 4)]
STRIDES = [8, 16]


def anchors():
    gen = TASK_UTILS.build(dict(type='AnchorGenerator', strides=STRIDES, ratios=[1.0], scales=[4]))
    mlvl = gen.grid_priors(SIZES)
    flat = torch.cat(mlvl)
    return InstanceData(priors=flat, valid_flags=torch.ones(len(flat), dtype=torch.bool)), [len(a) for a in mlvl]


def assign(boxes, allowed_border=-1, **kwargs):
    pred, nums = anchors()
    gt = InstanceData(bboxes=torch.tensor(boxes), labels=torch.arange(len(boxes)) + 3)
    return TASK_UTILS.build(dict(type='RegionAssigner', **kwargs)).assign(
        pred, gt, img_meta=dict(img_shape=(64, 64)), featmap_sizes=SIZES, num_level_anchors=nums, anchor_scale=4,
        anchor_strides=STRIDES, allowed_border=allowed_border)


def test_hand_layout():
    # A 32 px box: level 0 (4 * stride 8). Anchor centres sit on cells (x, y) * 8; the box spans
    # cells 0-4. Centre region (ratio 0.4 from each side): round(1.6)..round(2.4) = cell 2;
    # ignore region (0.25): cells 1-3. On level 1 (cells 0-2 of the box) its ignore region is
    # round(0.5) = 0 .. round(1.5) = 2.
    res = assign([[0., 0., 32., 32.]])
    lvl0, lvl1 = res.gt_inds[:64].view(8, 8), res.gt_inds[64:].view(4, 4)
    expected0 = torch.zeros(8, 8, dtype=torch.long)
    expected0[1:4, 1:4] = -1
    expected0[2, 2] = 1
    expected1 = torch.zeros(4, 4, dtype=torch.long)
    expected1[0:3, 0:3] = -1
    assert torch.equal(lvl0, expected0) and torch.equal(lvl1, expected1)
    assert res.labels[18] == 3 and (res.labels[res.gt_inds <= 0] == 0).all()
    # allowed_border=0: anchors reaching outside the 64 x 64 image are ignored too (the 32 px
    # anchor at cell (2, 2) = [0, 0, 32, 32] stays inside).
    border = assign([[0., 0., 32., 32.]], allowed_border=0)
    assert border.gt_inds[0] == -1 and border.gt_inds[18] == 1


def reference(boxes, center_ratio=0.2, ignore_ratio=0.5):
    """MMDetection's loop (steps 1-4), written independently."""
    pred, nums = anchors()
    mlvl = pred.priors.split(nums)
    r1, r2 = (1 - center_ratio) / 2, (1 - ignore_ratio) / 2
    inds = [torch.zeros(n, dtype=torch.long) for n in nums]
    ignore = [torch.zeros(n, dtype=torch.bool) for n in nums]

    def flags(a, stride, box, r, size):
        b = [c / stride for c in box]
        x1, y1 = round((1 - r) * b[0] + r * b[2]), round((1 - r) * b[1] + r * b[3])
        x2, y2 = round(r * b[0] + (1 - r) * b[2]), round(r * b[1] + (1 - r) * b[3])
        h, w = size
        x1, x2, y1, y2 = min(max(x1, 0), w), min(max(x2, 0), w), min(max(y1, 0), h), min(max(y2, 0), h)
        cx, cy = (a[:, 0] + a[:, 2]) / 2 / stride, (a[:, 1] + a[:, 3]) / 2 / stride
        return (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2)

    for k, box in enumerate(boxes):
        s = ((box[2] - box[0]) * (box[3] - box[1])) ** 0.5
        lvl = int(torch.tensor(s).log2().sub(torch.tensor(4. * STRIDES[0]).log2()).add(0.5).floor().clamp(0, 1))
        inds[lvl][flags(mlvl[lvl], STRIDES[lvl], box, r2, SIZES[lvl])] = -1
        inds[lvl][flags(mlvl[lvl], STRIDES[lvl], box, r1, SIZES[lvl])] = k + 1
        for adj in (lvl - 1, lvl + 1):
            if 0 <= adj < 2:
                ignore[adj] |= flags(mlvl[adj], STRIDES[adj], box, r2, SIZES[adj])
    for i, ign in zip(inds, ignore):
        i[ign] = -1
    return torch.cat(inds)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_overlapping_gts_match_the_sequential_loop(seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(6, 2, generator=g) * 40
    wh = 12 + torch.rand(6, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + wh], 1).tolist()
    assert torch.equal(assign(boxes).gt_inds, reference(boxes))


def test_missing_arguments_and_empty_gt():
    pred, nums = anchors()
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 8., 8.]]), labels=torch.tensor([0]))
    with pytest.raises(ValueError, match='featmap_sizes'):
        TASK_UTILS.build(dict(type='RegionAssigner')).assign(pred, gt, img_meta=dict(img_shape=(64, 64)))
    empty = assign(torch.zeros(0, 4).tolist())
    assert (empty.gt_inds == 0).all()

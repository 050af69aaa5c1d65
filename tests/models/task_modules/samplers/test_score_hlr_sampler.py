"""ScoreHLRSampler (PISA): NMS-match groups, Score-HLR ranks and importance weights on a hand case."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.losses import CrossEntropyLoss
from rcnn_plugins.models.task_modules.assigners import AssignResult
from rcnn_plugins.models.task_modules.coders import DeltaXYWHBBoxCoder
from rcnn_plugins.models.task_modules.samplers import ScoreHLRSampler
from rcnn_plugins.models.task_modules.samplers.score_hlr_sampler import nms_match_groups

# Negatives: A and B overlap (IoU 100/120 > 0.5), C and D overlap, E scores under score_thr.
BOXES = {'A': [0., 0., 10., 10.], 'B': [2., 0., 12., 10.], 'C': [50., 50., 60., 60.], 'D': [52., 50., 62., 60.],
         'E': [100., 100., 110., 110.], 'F': [200., 200., 210., 210.]}  # F is the positive
FG = {0.: 0.9, 2.: 0.6, 50.: 0.7, 52.: 0.2, 100.: 0.01, 200.: 0.5}  # foreground probability, keyed by x1


class FakeRoIHead:
    """Scores each RoI with a fixed foreground probability; zero box deltas (decoded box = RoI)."""

    def __init__(self):
        self.bbox_head = SimpleNamespace(num_classes=1, loss_cls=CrossEntropyLoss(), bbox_coder=DeltaXYWHBBoxCoder())

    def _bbox_forward(self, feats, rois):
        p = torch.tensor([FG[float(x)] for x in rois[:, 1]])
        return torch.stack([p.log(), (1 - p).log()], 1), torch.zeros(rois.size(0), 4)


def run(num):
    names = list(BOXES)
    priors = torch.tensor([BOXES[n] for n in names])
    gt_inds = torch.tensor([0, 0, 0, 0, 0, 1])
    res = AssignResult(1, gt_inds, torch.zeros(6), torch.where(gt_inds > 0, 0, -1))
    sampler = ScoreHLRSampler(num=num, pos_fraction=0.5, context=FakeRoIHead(), add_gt_as_proposals=False)
    torch.manual_seed(0)
    result, weights = sampler.sample(res, InstanceData(priors=priors), InstanceData(
        bboxes=torch.tensor([BOXES['F']]), labels=torch.tensor([0])), feats=[torch.zeros(1)])
    return [names[i] for i in result.neg_inds], weights, [names[i] for i in result.pos_inds]


def normalised(names, w):
    """PISA's rescaling: weighted background loss of the picked negatives = their plain loss."""
    loss = [-math.log(1 - FG[BOXES[n][0]]) for n in names]
    ratio = sum(loss) / sum(li * wi for li, wi in zip(loss, w))
    return [wi * ratio for wi in w]


def test_nms_match_groups():
    boxes = torch.tensor([BOXES[n] for n in 'ABCD'])
    scores = torch.tensor([0.9, 0.6, 0.7, 0.2])
    assert nms_match_groups(boxes, scores, 0.5).tolist() == [0, 0, 2, 2]
    # A stricter threshold keeps every box alone.
    assert nms_match_groups(boxes, scores, 0.9).tolist() == [0, 1, 2, 3]


def test_hand_case_three_negatives():
    # 4 valid negatives, V = 4. Importance = V - rank in group + score:
    # A 4 - 0 + .9 = 4.9, C 4 - 0 + .7 = 4.7, B 4 - 1 + .6 = 3.6, D 4 - 1 + .2 = 3.2 -> ranks A0 C1 B2 D3.
    # 6 sampled, 1 positive (F) -> up to 5 negatives; with num=4: 3 -> A, C, B (group bests first).
    neg, w, pos = run(num=4)
    assert pos == ['F'] and neg == ['A', 'C', 'B']
    # U = max(3, 4) = 4: weights ((4 - rank) / 4) ** 0.5, then normalised.
    expected = normalised(neg, [1.0, math.sqrt(0.75), math.sqrt(0.5)])
    torch.testing.assert_close(w, torch.tensor(expected))


def test_hand_case_all_negatives_with_random_fill():
    # 5 wanted: the 4 valid by importance, then E (invalid) at random with the smallest weight.
    neg, w, _ = run(num=6)
    assert neg == ['A', 'C', 'B', 'D', 'E']
    raw = [math.sqrt((5 - r) / 5) for r in range(4)]
    expected = normalised(neg, raw + [raw[-1]])
    torch.testing.assert_close(w, torch.tensor(expected))


def test_needs_the_roi_head():
    with pytest.raises(TypeError, match='RoI head'):
        ScoreHLRSampler(num=8, pos_fraction=0.25)

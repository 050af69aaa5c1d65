"""``set_nms``: CrowdDet's NMS, in which boxes predicted from the same RoI never suppress each other.

CrowdDet (Chu et al. 2020) predicts k boxes per proposal so that two heavily overlapping people
can both be detected; plain NMS would remove one of the pair again. "Set NMS" is greedy NMS (in
descending score order, a kept box removes every later box with IoU above the threshold) with one
change: a box never removes a box of its own set (the same RoI).

Vectorised as Cluster-NMS (Zheng et al. 2020): on the score-sorted boxes, S[i, j] (i < j) says box i
would remove box j (IoU > threshold and different RoIs). Greedy NMS keeps j iff no *kept* i < j has
S[i, j]; starting from "all kept", ``keep = not any_i(S[i, :] and keep[i])`` is iterated to a fixed
point. After t rounds the first t boxes are decided, so it ends in at most M rounds (in practice a
handful: the length of the longest suppression chain), each a (M, M) tensor op, never a Python loop
over boxes. Memory is O(M^2) for M boxes above the score threshold (M <= k * proposals).
"""
import torch
from torch import Tensor

from rcnn_plugins.structures import bbox_overlaps


def set_nms(bboxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float, max_num: int = -1) -> Tensor:
    """Indices of the boxes set NMS keeps, highest score first.

    Args:
        bboxes: (M, 4) xyxy boxes.
        scores: (M,) their scores.
        groups: (M,) the set (RoI index) of each box; boxes of one set never suppress each other.
        iou_threshold: a box is removed by a kept higher-scoring box of another set when their IoU
            is strictly above this.
        max_num: keep at most this many (the highest scoring); <= 0: all.

    Returns:
        (K,) long indices into ``bboxes``, in descending score order (ties: lower index first).
    """
    num = bboxes.size(0)
    if num == 0:
        return torch.zeros((0,), dtype=torch.long, device=bboxes.device)
    order = scores.argsort(descending=True, stable=True)
    boxes, sets = bboxes[order].float(), groups[order]
    later = torch.ones(num, num, dtype=torch.bool, device=bboxes.device).triu_(diagonal=1)
    suppress = (bbox_overlaps(boxes, boxes) > iou_threshold) & (sets[:, None] != sets[None, :]) & later
    keep = torch.ones(num, dtype=torch.bool, device=bboxes.device)
    for _ in range(num):
        new_keep = ~(suppress & keep[:, None]).any(dim=0)
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    kept = order[keep]
    return kept[:max_num] if max_num > 0 else kept

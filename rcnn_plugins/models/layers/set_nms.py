"""``set_nms``: CrowdDet's NMS, in which boxes predicted from the same RoI never suppress each other.

CrowdDet (Chu et al. 2020) predicts k boxes per proposal so that two heavily overlapping people
can both be detected; plain NMS would remove one of the pair again. "Set NMS" is greedy NMS (in
descending score order, a kept box removes every later box with IoU above the threshold) with one
change: a box never removes a box of its own set (the same RoI).

Vectorised in blocks of the score-sorted boxes, like the bitmask NMS kernels: S[i, j] (i < j) says
box i would remove box j (IoU > threshold, different RoIs), computed once as an (M, M) matrix. Per
block (a Python loop over M / block blocks, not over boxes), the boxes removed by kept boxes of
earlier blocks are dropped with one masked reduction; inside the block greedy NMS is the fixed
point of ``keep = candidate and not any_i(S[i, :] and keep[i])`` (Cluster-NMS, Zheng et al. 2020),
iterated from "all candidates kept" on a (block, block) matrix: after t rounds the first t boxes are
decided, so it ends within ``block`` rounds, in practice a handful. Memory is O(M^2) for M boxes
above the score threshold (M <= k * proposals).
"""
import torch
from torch import Tensor
from torchvision.ops import box_iou


def set_nms(bboxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float, max_num: int = -1,
            block: int = 256) -> Tensor:
    """Indices of the boxes set NMS keeps, highest score first.

    Args:
        bboxes: (M, 4) xyxy boxes.
        scores: (M,) their scores.
        groups: (M,) the set (RoI index) of each box; boxes of one set never suppress each other.
        iou_threshold: a box is removed by a kept higher-scoring box of another set when their IoU
            is strictly above this.
        max_num: keep at most this many (the highest scoring); <= 0: all.
        block: boxes decided together (speed only; the result does not depend on it).

    Returns:
        (K,) long indices into ``bboxes``, in descending score order (ties: lower index first).
    """
    num = bboxes.size(0)
    if num == 0:
        return torch.zeros((0,), dtype=torch.long, device=bboxes.device)
    order = scores.argsort(descending=True, stable=True)
    boxes, sets = bboxes[order].float(), groups[order]
    later = torch.ones(num, num, dtype=torch.bool, device=bboxes.device).triu_(diagonal=1)
    suppress = (box_iou(boxes, boxes) > iou_threshold) & (sets[:, None] != sets[None, :]) & later
    keep = torch.zeros(num, dtype=torch.bool, device=bboxes.device)
    for start in range(0, num, block):
        stop = min(start + block, num)
        # Removed by a kept box of an earlier block?
        candidate = ~(suppress[:start, start:stop] & keep[:start, None]).any(dim=0)
        inner = suppress[start:stop, start:stop]
        cur = candidate
        for _ in range(stop - start):
            new = candidate & ~(inner & cur[:, None]).any(dim=0)
            if torch.equal(new, cur):
                break
            cur = new
        keep[start:stop] = cur
    kept = order[keep]
    return kept[:max_num] if max_num > 0 else kept

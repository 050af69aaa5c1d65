"""``set_nms``: CrowdDet's NMS, in which boxes predicted from the same RoI never suppress each other.

CrowdDet (Chu et al. 2020) predicts k boxes per proposal so that two heavily overlapping people
can both be detected; plain NMS would remove one of the pair again. "Set NMS" is greedy NMS (in
descending score order, a kept box removes every later box with IoU above the threshold) with one
change: a box never removes a box of its own set (the same RoI).

Vectorised in blocks of the score-sorted boxes (a Python loop over M / block blocks, never over
boxes): a box of the current block is a candidate unless a *kept* box of an earlier block of
another RoI overlaps it by more than the threshold (one IoU matrix kept-so-far x block); inside the
block greedy NMS is the fixed point of ``keep = candidate and not any_i(S[i, :] and keep[i])``,
S[i, j] (i < j) meaning "box i would remove box j" (Cluster-NMS, Zheng et al. 2020), iterated from
"all candidates kept" on the (block, block) matrix: after t rounds the first t boxes are decided, so
it ends within ``block`` rounds, in practice a handful. Work O(K * M) IoUs for K kept of M boxes,
memory O(M * block).
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
    keep = torch.zeros(num, dtype=torch.bool, device=bboxes.device)
    for start in range(0, num, block):
        stop = min(start + block, num)
        blk_boxes, blk_sets = boxes[start:stop], sets[start:stop]
        kept = torch.nonzero(keep[:start]).reshape(-1)  # earlier blocks are final
        # Removed by a kept box of an earlier block (of another RoI)?
        removed = (box_iou(boxes[kept], blk_boxes) > iou_threshold) & (sets[kept][:, None] != blk_sets[None, :])
        candidate = ~removed.any(dim=0)
        later = torch.ones(stop - start, stop - start, dtype=torch.bool, device=bboxes.device).triu_(diagonal=1)
        inner = (box_iou(blk_boxes, blk_boxes) > iou_threshold) & (blk_sets[:, None] != blk_sets[None, :]) & later
        cur = candidate
        for _ in range(stop - start):
            new = candidate & ~(inner & cur[:, None]).any(dim=0)
            if torch.equal(new, cur):
                break
            cur = new
        keep[start:stop] = cur
        if 0 < max_num <= int(keep.sum()):
            break  # later blocks cannot change the max_num best kept boxes
    kept = order[keep]
    return kept[:max_num] if max_num > 0 else kept

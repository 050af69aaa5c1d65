"""Proposal recall (numpy): share of ground-truth boxes covered by the top-N proposals.

Used by ``VOCMetric(metric='recall')`` and ``CocoMetric(metric='proposal_fast')``. In each image the
gt/proposal pairs are matched one-to-one greedily, highest IoU first; a gt counts as recalled at
threshold t when its matched IoU is >= t.
"""
from typing import Sequence, Union

import numpy as np

from .mean_ap import bbox_overlaps_np


def _matched_ious(ious: np.ndarray) -> np.ndarray:
    """(G, P) IoUs -> (G,) IoU of each gt under greedy one-to-one matching (0 if unmatched)."""
    ious = ious.copy()
    out = np.zeros(ious.shape[0])
    if ious.size == 0:
        return out
    # Each step takes the best remaining pair and removes its gt and its proposal.
    for _ in range(min(ious.shape)):
        g, p = np.unravel_index(np.argmax(ious), ious.shape)
        if ious[g, p] < 0:
            break
        out[g] = ious[g, p]
        ious[g, :] = -1
        ious[:, p] = -1
    return out


def eval_recalls(gts: Sequence[np.ndarray], proposals: Sequence[np.ndarray],
                 proposal_nums: Union[int, Sequence[int]] = (100, 300, 1000),
                 iou_thrs: Union[float, Sequence[float]] = 0.5,
                 use_legacy_coordinate: bool = False) -> np.ndarray:
    """Recall of each (proposal number, IoU threshold).

    Args:
        gts: per image, (G, 4) gt boxes.
        proposals: per image, (P, 4) boxes already in rank order, or (P, 5) with scores (then
            sorted by score here).
        proposal_nums: how many top proposals per image to use.
        iou_thrs: IoU thresholds.

    Returns:
        (len(proposal_nums), len(iou_thrs)) recalls.
    """
    nums = np.atleast_1d(np.asarray(proposal_nums, dtype=int))
    thrs = np.atleast_1d(np.asarray(iou_thrs, dtype=np.float64))
    if len(gts) != len(proposals):
        raise ValueError('eval_recalls: one gt array and one proposal array per image are needed')
    total_gts = sum(np.asarray(g).reshape(-1, 4).shape[0] for g in gts)
    matched = np.zeros((nums.size, total_gts))
    start = 0
    for gt, props in zip(gts, proposals):
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
        props = np.asarray(props, dtype=np.float64)
        if props.size == 0:
            props = props.reshape(0, 4)
        if props.shape[1] == 5:
            props = props[np.argsort(-props[:, 4], kind='stable')]
        props = props[:, :4]
        ious = bbox_overlaps_np(gt, props, use_legacy_coordinate)
        for k, num in enumerate(nums):
            matched[k, start:start + len(gt)] = _matched_ious(ious[:, :num])
        start += len(gt)
    if total_gts == 0:
        return np.zeros((nums.size, thrs.size))
    return (matched[:, :, None] >= thrs[None, None, :]).sum(axis=1) / float(total_gts)

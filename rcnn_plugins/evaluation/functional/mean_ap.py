"""PASCAL VOC style mean average precision (numpy), the computation behind ``VOCMetric``.

Per class, detections of all images are ranked by score. Within an image a detection is matched
to the ground truth (gt) box it overlaps most (ignored/difficult gts included):

- best IoU >= ``iou_thr`` with a normal gt not matched yet: true positive (the gt is now matched);
- best IoU >= ``iou_thr`` with a gt that is already matched: false positive (a duplicate);
- best IoU >= ``iou_thr`` with an ignored gt: neither (the detection is dropped from the ranking);
- otherwise: false positive.

Ignored gts do not count as positives. Precision and recall follow the ranked cumulative TP/FP
counts and AP is either the VOC2007 11-point average (``'11points'``) or the area under the
monotone precision envelope (``'area'``, VOC2010+). The mean over classes uses only classes that
have at least one (non-ignored) gt; a dataset with none gives 0.

With ``use_legacy_coordinate`` boxes are taken as inclusive pixel ranges: widths and heights are
``x2 - x1 + 1``, as in the original VOC devkit.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

EVAL_MODES = ('11points', 'area')


def bbox_overlaps_np(bboxes1: np.ndarray, bboxes2: np.ndarray, use_legacy_coordinate: bool = False) -> np.ndarray:
    """(M, 4) x (N, 4) xyxy boxes -> (M, N) IoU; +1 on sides with ``use_legacy_coordinate``."""
    extra = 1.0 if use_legacy_coordinate else 0.0
    area1 = (bboxes1[:, 2] - bboxes1[:, 0] + extra) * (bboxes1[:, 3] - bboxes1[:, 1] + extra)
    area2 = (bboxes2[:, 2] - bboxes2[:, 0] + extra) * (bboxes2[:, 3] - bboxes2[:, 1] + extra)
    wh = (np.minimum(bboxes1[:, None, 2:4], bboxes2[None, :, 2:4])
          - np.maximum(bboxes1[:, None, :2], bboxes2[None, :, :2]) + extra).clip(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / np.maximum(union, np.finfo(np.float32).eps)


def _areas(bboxes: np.ndarray, extra: float) -> np.ndarray:
    return (bboxes[:, 2] - bboxes[:, 0] + extra) * (bboxes[:, 3] - bboxes[:, 1] + extra)


def average_precision(recalls: np.ndarray, precisions: np.ndarray, eval_mode: str = 'area') -> float:
    """AP of one ranked precision/recall curve (1-D arrays in rank order)."""
    if eval_mode == 'area':
        # Precision envelope: at each rank, the best precision reachable at that recall or beyond.
        mrec = np.concatenate(([0.0], recalls, [1.0]))
        mpre = np.concatenate(([0.0], precisions, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    if eval_mode == '11points':
        ap = 0.0
        for thr in np.arange(0, 1 + 1e-3, 0.1):
            reached = precisions[recalls >= thr]
            ap += reached.max() if reached.size else 0.0
        return float(ap / 11)
    raise ValueError(f'eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}')


def tpfp_image(dets: np.ndarray, gts: np.ndarray, gts_ignore: np.ndarray, iou_thr: float,
               area_ranges: Sequence[Tuple[Optional[float], Optional[float]]],
               use_legacy_coordinate: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """TP / FP flags of one image's detections of one class.

    Args:
        dets: (K, 5) boxes and scores. gts: (G, 4). gts_ignore: (I, 4).
        area_ranges: (min_area, max_area) pairs; ``(None, None)`` means all sizes. A gt outside a
            range is treated as ignored for it; an unmatched detection outside it is not an FP.

    Returns:
        tp, fp: (len(area_ranges), K) float arrays of 0/1 (both 0 for a detection that is ignored).
    """
    extra = 1.0 if use_legacy_coordinate else 0.0
    num_dets = dets.shape[0]
    tp = np.zeros((len(area_ranges), num_dets))
    fp = np.zeros((len(area_ranges), num_dets))
    if num_dets == 0:
        return tp, fp
    gts, gts_ignore = gts.reshape(-1, 4), gts_ignore.reshape(-1, 4)
    all_gts = np.vstack([gts, gts_ignore])
    is_ignored = np.concatenate([np.zeros(len(gts), bool), np.ones(len(gts_ignore), bool)])
    det_areas = _areas(dets, extra)

    if all_gts.shape[0] == 0:
        for k, (lo, hi) in enumerate(area_ranges):
            fp[k] = 1 if lo is None else ((det_areas >= lo) & (det_areas < hi))
        return tp, fp

    ious = bbox_overlaps_np(dets[:, :4], all_gts, use_legacy_coordinate)
    best_iou = ious.max(axis=1)
    best_gt = ious.argmax(axis=1)
    order = np.argsort(-dets[:, 4], kind='stable')
    gt_areas = _areas(all_gts, extra)
    for k, (lo, hi) in enumerate(area_ranges):
        out_of_range = np.zeros(len(all_gts), bool) if lo is None else (gt_areas < lo) | (gt_areas >= hi)
        skip = is_ignored | out_of_range
        matched = np.zeros(len(all_gts), bool)
        # Greedy in score order: the definition of VOC matching (a gt can be claimed once).
        for i in order:
            if best_iou[i] >= iou_thr:
                g = best_gt[i]
                if skip[g]:
                    continue
                if matched[g]:
                    fp[k, i] = 1
                else:
                    matched[g] = True
                    tp[k, i] = 1
            elif lo is None or lo <= det_areas[i] < hi:
                fp[k, i] = 1
    return tp, fp


def eval_map(det_results: Sequence[Sequence[np.ndarray]], annotations: Sequence[dict],
             iou_thr: float = 0.5, scale_ranges: Optional[Sequence[Tuple[float, float]]] = None,
             eval_mode: str = 'area', use_legacy_coordinate: bool = False) -> Tuple[object, List[dict]]:
    """Mean AP over classes.

    Args:
        det_results: per image, per class, a (K, 5) array [x1, y1, x2, y2, score].
        annotations: per image, dict(bboxes (G, 4), labels (G,), bboxes_ignore (I, 4), labels_ignore (I,)).
        iou_thr: IoU needed for a match.
        scale_ranges: (min, max) box sizes (sqrt of area); AP is computed per range.
        eval_mode: ``'area'`` or ``'11points'``.
        use_legacy_coordinate: +1 on widths and heights.

    Returns:
        mean_ap (float, or a list of one float per scale range) and per-class dicts
        (num_gts, num_dets, recall, precision, ap), arrays shaped per scale range when ranges are given.
    """
    if eval_mode not in EVAL_MODES:
        raise ValueError(f'eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}')
    if len(det_results) != len(annotations):
        raise ValueError('eval_map: one detection list and one annotation per image are needed')
    extra = 1.0 if use_legacy_coordinate else 0.0
    area_ranges = ([(lo ** 2, hi ** 2) for lo, hi in scale_ranges] if scale_ranges is not None else [(None, None)])
    num_scales = len(area_ranges)
    num_classes = len(det_results[0]) if det_results else 0

    class_results = []
    for c in range(num_classes):
        tps, fps, scores = [], [], []
        num_gts = np.zeros(num_scales, dtype=int)
        for dets_per_img, ann in zip(det_results, annotations):
            dets = np.asarray(dets_per_img[c], dtype=np.float64).reshape(-1, 5)
            gts = ann['bboxes'][ann['labels'] == c].reshape(-1, 4)
            gts_ignore = ann['bboxes_ignore'][ann['labels_ignore'] == c].reshape(-1, 4)
            tp, fp = tpfp_image(dets, gts, gts_ignore, iou_thr, area_ranges, use_legacy_coordinate)
            tps.append(tp)
            fps.append(fp)
            scores.append(dets[:, 4])
            if scale_ranges is None:
                num_gts[0] += gts.shape[0]
            else:
                gt_areas = _areas(gts, extra)
                for k, (lo, hi) in enumerate(area_ranges):
                    num_gts[k] += np.sum((gt_areas >= lo) & (gt_areas < hi))
        scores = np.concatenate(scores)
        # Stable: equal scores keep image order, so results do not depend on the sort algorithm.
        order = np.argsort(-scores, kind='stable')
        tp = np.cumsum(np.hstack(tps)[:, order], axis=1)
        fp = np.cumsum(np.hstack(fps)[:, order], axis=1)
        eps = np.finfo(np.float32).eps
        recalls = tp / np.maximum(num_gts[:, None], eps)
        precisions = tp / np.maximum(tp + fp, eps)
        aps = np.array([average_precision(recalls[k], precisions[k], eval_mode) for k in range(num_scales)])
        if scale_ranges is None:
            class_results.append(dict(num_gts=int(num_gts[0]), num_dets=len(scores), recall=recalls[0],
                                      precision=precisions[0], ap=float(aps[0])))
        else:
            class_results.append(dict(num_gts=num_gts, num_dets=len(scores), recall=recalls,
                                      precision=precisions, ap=aps))

    if scale_ranges is None:
        aps = [r['ap'] for r in class_results if r['num_gts'] > 0]
        mean_ap = float(np.mean(aps)) if aps else 0.0
    else:
        all_ap = np.vstack([r['ap'] for r in class_results]) if class_results else np.zeros((0, num_scales))
        all_gts = np.vstack([r['num_gts'] for r in class_results]) if class_results else np.zeros((0, num_scales))
        mean_ap = [float(all_ap[all_gts[:, k] > 0, k].mean()) if np.any(all_gts[:, k] > 0) else 0.0
                   for k in range(num_scales)]
    return mean_ap, class_results

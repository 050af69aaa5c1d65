"""``OpenImagesMetric``: Open Images detection AP as MMDetection evaluates it (``openimages/AP50``,
``openimages/mAP``).

Per image, before matching (``get_supercategory`` / ``filter_labels``):

- every ground-truth box is also a box of each ancestor class (``RELATION_MATRIX``);
- every detection of class c is also a detection of each ancestor of c that the image is annotated
  with (its boxes' classes, expanded, and its human-verified image-level labels); detections of
  classes the image is not annotated with are dropped (Open Images only labels some classes per
  image, so they can be neither right nor wrong).

Per class and image (MMDetection's ``tpfp_openimages``): detections by descending score first
match non-group-of boxes at IoU >= ``iou_thr`` (a box matched twice: false positive); then the
unmatched ones covering a *group-of* box by IoA >= ``ioa_thr`` merge into one detection per
group-of box (its best score): one true positive per group-of box, the other covering detections
are not counted; a group-of box that no detection covers adds a false positive of score 0.
AP: the area under the precision envelope (VOC's ``'area'``), classes with ground truth averaged.
"""
import copy
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from rcnn_plugins.registry import METRICS
from ..functional.mean_ap import average_precision


def _overlaps(a: np.ndarray, b: np.ndarray, mode: str = 'iou') -> np.ndarray:
    w = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(min=0)
    h = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(min=0)
    inter = w * h
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    if mode == 'iof':
        return inter / np.maximum(area_a, np.finfo(np.float32).eps)
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    return inter / np.maximum(area_a + area_b - inter, np.finfo(np.float32).eps)


def tpfp_openimages(dets: np.ndarray, gts: np.ndarray, group_of: np.ndarray, iou_thr: float, ioa_thr: float):
    """One class in one image: dets (D, 5), gts (G, 4), group_of (G,) bool -> (scores, tp, fp) of the
    counted detections (see the module docstring)."""
    order = np.argsort(-dets[:, 4], kind='stable')
    dets = dets[order]
    tp, fp = np.zeros(len(dets)), np.zeros(len(dets))
    single, group = gts[~group_of], gts[group_of]
    if len(single):
        iou = _overlaps(dets[:, :4], single)
        best, best_gt = iou.max(1), iou.argmax(1)
        covered = np.zeros(len(single), dtype=bool)
        for i in range(len(dets)):  # greedy by score: a box counts for its best detection only
            if best[i] >= iou_thr:
                tp[i], fp[i] = (0, 1) if covered[best_gt[i]] else (1, 0)
                covered[best_gt[i]] = True
            else:
                fp[i] = 1
    else:
        fp[:] = 1
    if not len(group):
        return dets[:, 4], tp, fp
    ioa = _overlaps(dets[:, :4], group, 'iof')
    on_group = (tp == 0) & (ioa.max(1) >= ioa_thr)           # not a true positive, inside a group-of box
    owner = ioa.argmax(1)
    group_score = np.zeros(len(group))
    hit = np.zeros(len(group), dtype=bool)
    for i in np.flatnonzero(on_group):
        hit[owner[i]] = True
        group_score[owner[i]] = max(group_score[owner[i]], dets[i, 4])
    keep = ~on_group
    return (np.concatenate([dets[keep, 4], group_score]), np.concatenate([tp[keep], hit.astype(float)]),
            np.concatenate([fp[keep], (~hit).astype(float)]))


@METRICS.register_module()
class OpenImagesMetric(BaseMetric):
    """Args (MMDetection's): ``iou_thrs``, ``ioa_thrs`` (one per IoU threshold), ``scale_ranges``
    (not supported: None), ``use_group_of``, ``get_supercategory``, ``filter_labels``,
    ``collect_device``, ``prefix``. Needs the dataset's ``RELATION_MATRIX`` (``OpenImagesDataset``)."""

    default_prefix: Optional[str] = 'openimages'

    def __init__(self, iou_thrs: Union[float, List[float]] = 0.5, ioa_thrs: Union[float, List[float]] = 0.5,
                 scale_ranges: Optional[List[tuple]] = None, use_group_of: bool = True, get_supercategory: bool = True,
                 filter_labels: bool = True, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = [iou_thrs] if isinstance(iou_thrs, float) else list(iou_thrs)
        self.ioa_thrs = [ioa_thrs] if isinstance(ioa_thrs, float) or ioa_thrs is None else list(ioa_thrs)
        if len(self.iou_thrs) != len(self.ioa_thrs):
            raise ValueError(f'OpenImagesMetric: one ioa_thr per iou_thr, got {self.iou_thrs} and {self.ioa_thrs}')
        if use_group_of and None in self.ioa_thrs:
            raise ValueError('OpenImagesMetric: use_group_of=True needs ioa_thrs')
        if scale_ranges is not None:
            raise NotImplementedError('OpenImagesMetric: scale_ranges is not supported; use None')
        self.scale_ranges = scale_ranges
        self.use_group_of, self.get_supercategory, self.filter_labels = use_group_of, get_supercategory, filter_labels

    def _relation(self) -> np.ndarray:
        relation = (self.dataset_meta or {}).get('RELATION_MATRIX')
        if relation is None:
            raise KeyError("OpenImagesMetric needs dataset_meta['RELATION_MATRIX'] (use OpenImagesDataset with "
                           'its hierarchy_file)')
        return np.asarray(relation) > 0

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        relation = self._relation()
        for sample in data_samples:
            instances = copy.deepcopy(list(sample['instances']))
            labels = np.array([i['bbox_label'] for i in instances], dtype=np.int64)
            boxes = np.array([i['bbox'] for i in instances], dtype=np.float64).reshape(-1, 4)
            group = np.array([i.get('is_group_of', False) for i in instances], dtype=bool)
            if self.get_supercategory and len(labels):
                # (box, ancestor) pairs
                pairs = np.argwhere(relation[labels] & ~np.eye(relation.shape[0], dtype=bool)[labels])
                labels = np.concatenate([labels, pairs[:, 1]])
                boxes = np.concatenate([boxes, boxes[pairs[:, 0]]])
                group = np.concatenate([group, group[pairs[:, 0]]])
            pred = sample['pred_instances']
            p_boxes = np.asarray(pred['bboxes'].cpu(), dtype=np.float64).reshape(-1, 4)
            p_scores = np.asarray(pred['scores'].cpu(), dtype=np.float64)
            p_labels = np.asarray(pred['labels'].cpu(), dtype=np.int64)
            image_labels = sample.get('image_level_labels')
            allowed = np.unique(np.concatenate([labels, np.asarray(image_labels, dtype=np.int64)])
                                if image_labels is not None else labels)
            p_boxes, p_scores, p_labels = self._expand_predictions(p_boxes, p_scores, p_labels, allowed, relation)
            self.results.append(dict(gt_boxes=boxes, gt_labels=labels, gt_group=group, boxes=p_boxes,
                                     scores=p_scores, labels=p_labels))

    def _expand_predictions(self, boxes, scores, labels, allowed, relation):
        """MMDetection's order: for each predicted class, its ancestors the image is annotated with get
        a copy of its detections; classes (the class or ancestors) not annotated are dropped."""
        out_b, out_s, out_l = boxes, scores, labels
        for c in np.unique(labels):
            for a in np.flatnonzero(relation[c]):
                if a in allowed and a != c and self.get_supercategory:
                    idx = labels == c
                    out_b = np.concatenate([out_b, boxes[idx]])
                    out_s = np.concatenate([out_s, scores[idx]])
                    out_l = np.concatenate([out_l, np.full(idx.sum(), a, dtype=np.int64)])
                elif a not in allowed and self.filter_labels:
                    keep = out_l != a
                    out_b, out_s, out_l = out_b[keep], out_s[keep], out_l[keep]
        return out_b, out_s, out_l

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        num_classes = len(self.dataset_meta['classes'])
        out, means = OrderedDict(), []
        for iou_thr, ioa_thr in zip(self.iou_thrs, self.ioa_thrs):
            aps = []
            for c in range(num_classes):
                scores, tps, fps, num_gts = [], [], [], 0
                for r in results:
                    gt_mask = r['gt_labels'] == c
                    num_gts += int(gt_mask.sum())
                    dets = np.hstack([r['boxes'][r['labels'] == c], r['scores'][r['labels'] == c, None]])
                    group = r['gt_group'][gt_mask] if self.use_group_of else np.zeros(gt_mask.sum(), dtype=bool)
                    s, tp, fp = tpfp_openimages(dets, r['gt_boxes'][gt_mask], group, iou_thr, ioa_thr or 0.5)
                    scores.append(s)
                    tps.append(tp)
                    fps.append(fp)
                if num_gts == 0:
                    continue
                order = np.argsort(-np.concatenate(scores), kind='stable')
                tp, fp = np.cumsum(np.concatenate(tps)[order]), np.cumsum(np.concatenate(fps)[order])
                eps = np.finfo(np.float32).eps
                aps.append(average_precision(tp / max(num_gts, eps), tp / np.maximum(tp + fp, eps), 'area'))
            mean_ap = float(np.mean(aps)) if aps else 0.0
            means.append(mean_ap)
            out[f'AP{int(iou_thr * 100):02d}'] = round(mean_ap, 3)
            logger.info(f'OpenImages AP@{iou_thr} (IoA {ioa_thr}): {mean_ap:.4f} over {len(aps)} classes')
        out['mAP'] = sum(means) / len(means)
        return out

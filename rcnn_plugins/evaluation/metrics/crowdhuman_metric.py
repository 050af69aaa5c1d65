"""``CrowdHumanMetric``: CrowdHuman's AP, log-average miss rate (MR^-2) and Jaccard index (JI),
with MMDetection's (CrowdDet's) rules; keys ``crowd_human/mAP``, ``/mMR``, ``/JI`` (4 decimals).

Per image, ground truth and detections are clipped to the image (x1 to [0, w - 1], x2 to [0, w]);
ground truths are full boxes, those tagged other than ``person`` or with ``extra.ignore`` are
ignore regions.

- Matching (Caltech): detections by descending score; each takes the unmatched person box with
  the highest IoU > ``iou_thres``; failing that, a detection covering an ignore region by more
  than ``iou_thres`` of its own area (IoA) is left out; otherwise it is a false positive.
- ``AP``: over all detections of the dataset by descending score, the trapezoid area under the
  (recall, precision) points (no (0, 1) anchor, as CrowdDet).
- ``MR``: miss rate at the first point whose false positives per image reach each of 9 FPPI
  references log-spaced in [0.01, 1] (``'CALTECH_-2'``; ``'CALTECH_-4'``: [1e-4, 1]), geometric mean.
- ``JI``: per image, a maximum matching of detections scoring above ``t`` and person boxes at
  IoU >= ``iou_thres``, ``k / (m + n - k)`` with unmatched boxes inside ignore regions left out of
  ``m`` / ``n``; the mean over images, maximised over ``t`` in 0, 0.1, ..., 0.9.

Only the body-box mode is available (``eval_mode=0``): our detectors predict no head boxes.
"""
import json
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from rcnn_plugins.registry import METRICS

MR_REFS = {'CALTECH_-2': np.logspace(-2, 0, 9), 'CALTECH_-4': np.logspace(-4, 0, 9)}


class _ArgumentError(ValueError, AssertionError):
    """A bad argument: a ``ValueError``, and an ``AssertionError`` as MMDetection raises there."""


def _overlaps(a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """(N, 4), (M, 4) xyxy -> (N, M) IoU, or intersection over ``a``'s area (``'iof'``)."""
    w = (np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])).clip(min=0)
    h = (np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])).clip(min=0)
    inter = w * h
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    if mode == 'iof':
        return inter / np.maximum(area_a, 1e-6)
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    return inter / np.maximum(area_a + area_b - inter, 1e-6)


def _clip(boxes: np.ndarray, height: float, width: float) -> np.ndarray:
    boxes = boxes.copy()
    boxes[:, 0] = np.clip(boxes[:, 0], 0, width - 1)
    boxes[:, 1] = np.clip(boxes[:, 1], 0, height - 1)
    boxes[:, 2] = np.clip(boxes[:, 2], 0, width)
    boxes[:, 3] = np.clip(boxes[:, 3], 0, height)
    return boxes


def caltech_match(dets: np.ndarray, gts: np.ndarray, person: np.ndarray, thr: float):
    """Detections (D, 5) [x1, y1, x2, y2, score], ground truths (G, 4) with ``person`` (G,) bool
    -> (scores (K,), labels (K,) 1 = true / 0 = false positive) of the detections not ignored."""
    if len(dets) == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    dets = dets[np.argsort(-dets[:, 4], kind='stable')]
    order = np.argsort(~person, kind='stable')               # persons first, as CrowdDet sorts by tag
    gts, person = gts[order], person[order]
    iou = _overlaps(dets[:, :4], gts, 'iou')
    ioa = _overlaps(dets[:, :4], gts, 'iof')
    free = person.copy()
    scores, labels = [], []
    for i in range(len(dets)):  # greedy: each detection depends on what the better ones took
        cand = np.where(free & (iou[i] > thr), iou[i], -1.0)
        j = int(cand.argmax()) if len(cand) else -1
        if j >= 0 and cand[j] > thr:
            free[j] = False
            scores.append(dets[i, 4])
            labels.append(1)
        elif not (~person & (ioa[i] > thr)).any():
            scores.append(dets[i, 4])
            labels.append(0)
    return np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def _max_matching(adj: np.ndarray) -> List[tuple]:
    """Maximum bipartite matching of a (D, G) bool matrix (augmenting paths) -> [(d, g), ...]."""
    match_g = [-1] * adj.shape[1]
    neighbours = [np.flatnonzero(row).tolist() for row in adj]

    def augment(d, seen):
        for g in neighbours[d]:
            if g not in seen:
                seen.add(g)
                if match_g[g] < 0 or augment(match_g[g], seen):
                    match_g[g] = d
                    return True
        return False

    for d in range(adj.shape[0]):
        augment(d, set())
    return [(d, g) for g, d in enumerate(match_g) if d >= 0]


@METRICS.register_module()
class CrowdHumanMetric(BaseMetric):
    """Args (MMDetection's): ``ann_file`` (.odgt), ``metric`` ('AP', 'MR', 'JI' or a list),
    ``format_only`` + ``outfile_prefix`` (write ``<prefix>.json`` only), ``eval_mode`` (0 only),
    ``iou_thres``, ``compare_matching_method`` (None = Caltech; 'VOC' unsupported), ``mr_ref``,
    ``num_ji_process`` (accepted; one process here), ``backend_args``, ``collect_device``, ``prefix``."""

    default_prefix: Optional[str] = 'crowd_human'

    def __init__(self, ann_file: str, metric: Union[str, List[str]] = ['AP', 'MR', 'JI'], format_only: bool = False,
                 outfile_prefix: Optional[str] = None, file_client_args: dict = None, backend_args: dict = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None, eval_mode: int = 0,
                 iou_thres: float = 0.5, compare_matching_method: Optional[str] = None, mr_ref: str = 'CALTECH_-2',
                 num_ji_process: int = 10) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metrics = list(metric) if isinstance(metric, (list, tuple)) else [metric]
        for m in self.metrics:
            if m not in ('MR', 'AP', 'JI'):
                raise KeyError(f"CrowdHumanMetric: metric must be 'MR', 'AP' or 'JI', got {m!r}")
        if format_only and outfile_prefix is None:
            raise _ArgumentError('CrowdHumanMetric: format_only=True needs outfile_prefix (the results would go '
                                 'to a temporary directory, then be deleted)')
        if eval_mode != 0:
            raise NotImplementedError('CrowdHumanMetric: eval_mode 1 / 2 evaluate head boxes, which these detectors '
                                      'do not predict; use eval_mode=0 (full body boxes)')
        if compare_matching_method is not None:
            raise NotImplementedError("CrowdHumanMetric: compare_matching_method='VOC' is not available; use None "
                                      '(Caltech matching, the default)')
        if mr_ref not in MR_REFS:
            raise _ArgumentError(f"CrowdHumanMetric: mr_ref must be 'CALTECH_-2' or 'CALTECH_-4', got {mr_ref!r}")
        self.ann_file, self.format_only, self.outfile_prefix = ann_file, format_only, outfile_prefix
        self.eval_mode, self.iou_thres, self.mr_ref = eval_mode, iou_thres, mr_ref
        self.compare_matching_method, self.num_ji_process = compare_matching_method, num_ji_process
        self.backend_args = backend_args

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_instances']
            dets = np.hstack([np.asarray(pred['bboxes'].cpu(), dtype=np.float64).reshape(-1, 4),
                              np.asarray(pred['scores'].cpu(), dtype=np.float64).reshape(-1, 1)])
            self.results.append(dict(ID=sample['img_id'], height=sample['ori_shape'][0],
                                     width=sample['ori_shape'][1], dets=dets))

    @staticmethod
    def results2json(results: Sequence[dict], outfile_prefix: str) -> str:
        """CrowdHuman's result format: one record per image, ``dtboxes`` with ``box`` [x, y, w, h]."""
        path = f'{outfile_prefix}.json'
        records = [dict(ID=r['ID'], width=r['width'], height=r['height'],
                        dtboxes=[dict(box=[x1, y1, x2 - x1, y2 - y1], score=s, tag=1)
                                 for x1, y1, x2, y2, s in r['dets'].tolist()]) for r in results]
        with open(path, 'w') as f:
            json.dump(records, f)
        return path

    def _load_gt(self) -> Dict[str, dict]:
        gts = {}
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f.read().strip().split('\n'), 1):
                try:
                    rec = json.loads(line)
                    boxes = np.array([b['fbox'] for b in rec['gtboxes']], dtype=np.float64).reshape(-1, 4)
                    person = np.array([b['tag'] == 'person' and not (b.get('extra') or {}).get('ignore', 0)
                                       for b in rec['gtboxes']], dtype=bool)
                except (ValueError, KeyError, TypeError) as err:
                    raise ValueError(f'{self.ann_file}:{lineno}: bad CrowdHuman record ({type(err).__name__}: '
                                     f'{err}); need ID and gtboxes with tag and fbox [x, y, w, h]') from None
                boxes[:, 2:] += boxes[:, :2]
                gts[rec['ID']] = dict(boxes=boxes, person=person)
        return gts

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        tmp_dir = None
        prefix = self.outfile_prefix
        if prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            prefix = osp.join(tmp_dir.name, 'result')
        self.results2json(results, prefix)
        if tmp_dir is not None:
            tmp_dir.cleanup()
        if self.format_only:
            logger.info(f'results are saved in {osp.dirname(prefix)}')
            return OrderedDict()
        gts = self._load_gt()
        images = []
        for r in results:
            if r['ID'] not in gts:
                raise ValueError(f'CrowdHumanMetric: image {r["ID"]!r} is not in {self.ann_file}')
            g = gts[r['ID']]
            images.append(dict(dets=np.hstack([_clip(r['dets'][:, :4], r['height'], r['width']), r['dets'][:, 4:]]),
                               gts=_clip(g['boxes'], r['height'], r['width']), person=g['person']))
        out = OrderedDict()
        if 'AP' in self.metrics or 'MR' in self.metrics:
            matched = [caltech_match(im['dets'], im['gts'], im['person'], self.iou_thres) for im in images]
            scores = np.concatenate([m[0] for m in matched])
            labels = np.concatenate([m[1] for m in matched])
            labels = labels[np.argsort(-scores, kind='stable')]
            num_gt = int(sum(im['person'].sum() for im in images))
            tp, fp = np.cumsum(labels), np.cumsum(1 - labels)
            recall = tp / max(num_gt, 1)
            if 'AP' in self.metrics:
                precision = tp / np.maximum(tp + fp, 1)
                ap = float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2)) if len(tp) else 0.0
                out['mAP'] = round(ap, 4)
            if 'MR' in self.metrics:
                out['mMR'] = round(self._miss_rate(fp / len(images), 1 - recall), 4)
        if 'JI' in self.metrics:
            out['JI'] = round(max(self._jaccard(images, t / 10) for t in range(10)), 4)
        for k, v in out.items():
            logger.info(f'{k}: {v}')
        return out

    def _miss_rate(self, fppi: np.ndarray, miss: np.ndarray) -> float:
        if len(fppi) == 0:
            return 1.0
        idx = np.searchsorted(fppi, MR_REFS[self.mr_ref], side='left')   # first fppi >= ref
        idx = np.minimum(idx, len(fppi) - 1)
        with np.errstate(divide='ignore'):
            return float(np.exp(np.log(miss[idx]).mean()))

    def _jaccard(self, images: List[dict], score_thr: float) -> float:
        ratios, counted = [], 0
        for im in images:
            dets = im['dets'][im['dets'][:, 4] > score_thr, :4]
            persons, ignores = im['gts'][im['person']], im['gts'][~im['person']]
            matches = _max_matching(_overlaps(dets, persons, 'iou') >= self.iou_thres) \
                if len(dets) and len(persons) else []
            k = len(matches)
            free_d = np.setdiff1d(np.arange(len(dets)), [d for d, _ in matches])
            free_g = np.setdiff1d(np.arange(len(persons)), [g for _, g in matches])
            ign_d = int((_overlaps(dets[free_d], ignores, 'iof').max(1) > self.iou_thres).sum()) \
                if len(ignores) and len(free_d) else 0
            ign_g = int((_overlaps(persons[free_g], ignores, 'iof').max(1) > self.iou_thres).sum()) \
                if len(ignores) and len(free_g) else 0
            m, n = len(persons) - ign_g, len(dets) - ign_d
            ratios.append(k / (m + n - k + 1e-6))
            counted += int(m != 0 or n != 0)
        return float(np.sum(ratios) / counted) if counted else 0.0

"""``VOCMetric``: PASCAL VOC mean AP (or proposal recall) of detections.

Arguments and returned keys follow MMDetection 3.x's ``VOCMetric``; mmengine prefixes the keys
with ``pascal_voc/`` (``default_prefix``):

- ``metric='mAP'``: ``AP{100*iou_thr:02d}`` per IoU threshold (``AP50`` by default) and ``mAP``,
  their mean. With ``scale_ranges`` the keys get a ``_{min}-{max}`` suffix per size range
  (``AP50_0-32``, ``mAP_0-32``, ...). A per-class table (gts, dets, recall, ap) is logged.
- ``metric='recall'``: ``recall@{num}@{iou_thr}`` and, with several thresholds, ``AR@{num}``,
  class-agnostic.

The rules of matching, AP and the class mean are in :mod:`..functional.mean_ap`.

Ground truth, in original-image pixels, is read per sample from:

1. ``instances`` (list of dict(bbox xyxy, bbox_label, ignore_flag)) when the dataset keeps it in
   the sample, else
2. ``gt_instances`` / ``ignored_instances`` as they are. This is MMDetection's behaviour: its VOC
   test pipeline runs ``LoadAnnotations`` *after* ``Resize`` so those boxes are never resized.
   A pipeline that loads annotations before resizing must keep ``instances`` instead.

``use_legacy_coordinate`` (+1 on box sides): ``None`` decides from ``dataset_meta['dataset_type']``
(on for ``'VOC2007'``/``'VOC2012'``, off otherwise); True/False force it. MMDetection always uses
the legacy convention here; pass ``use_legacy_coordinate=True`` to reproduce it on other data.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from rcnn_plugins.registry import METRICS
from ..functional import eval_map, eval_recalls, format_table, to_numpy
from ..functional.mean_ap import EVAL_MODES

VOC_DATASET_TYPES = ('VOC2007', 'VOC2012')


@METRICS.register_module()
class VOCMetric(BaseMetric):
    """PASCAL VOC evaluation (see module docstring).

    Args:
        iou_thrs: IoU threshold(s) for a match.
        scale_ranges: (min, max) box sizes, in sqrt-area pixels, to evaluate separately.
        metric: ``'mAP'`` or ``'recall'``.
        proposal_nums: proposals per image for ``'recall'``.
        eval_mode: ``'11points'`` (VOC2007) or ``'area'`` (VOC2010+).
        use_legacy_coordinate: ``None`` = from the dataset type; True/False to force.
        collect_device, prefix: see mmengine's ``BaseMetric``.
    """

    default_prefix: Optional[str] = 'pascal_voc'

    def __init__(self,
                 iou_thrs: Union[float, List[float]] = 0.5,
                 scale_ranges: Optional[List[Tuple[float, float]]] = None,
                 metric: str = 'mAP',
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 eval_mode: str = '11points',
                 use_legacy_coordinate: Optional[bool] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = [iou_thrs] if isinstance(iou_thrs, (int, float)) else list(iou_thrs)
        self.scale_ranges = scale_ranges
        if metric not in ('mAP', 'recall'):
            raise KeyError(f"VOCMetric: metric must be 'mAP' or 'recall', got {metric!r}")
        self.metric = metric
        self.proposal_nums = list(proposal_nums)
        if eval_mode not in EVAL_MODES:
            raise ValueError(f'VOCMetric: eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}')
        self.eval_mode = eval_mode
        self.use_legacy_coordinate = use_legacy_coordinate

    # ------------------------------------------------------------------ collection
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store per sample the gt (numpy, original pixels) and the detections split by class."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            ann = self._gt_of(sample)
            pred = sample['pred_instances']
            bboxes = to_numpy(pred['bboxes']).reshape(-1, 4)
            scores = to_numpy(pred['scores']).reshape(-1, 1)
            labels = to_numpy(pred['labels']).reshape(-1)
            dets = np.hstack([bboxes, scores]).astype(np.float64)
            self.results.append((ann, [dets[labels == c] for c in range(num_classes)]))

    @staticmethod
    def _gt_of(sample: dict) -> dict:
        """dict(bboxes, labels, bboxes_ignore, labels_ignore) of one sample (see module docstring)."""
        if 'instances' in sample:
            instances = sample['instances']
            boxes = np.array([i['bbox'] for i in instances], dtype=np.float64).reshape(-1, 4)
            labels = np.array([i['bbox_label'] for i in instances], dtype=np.int64)
            ignore = np.array([bool(i.get('ignore_flag', 0)) for i in instances], dtype=bool)
            return dict(bboxes=boxes[~ignore], labels=labels[~ignore],
                        bboxes_ignore=boxes[ignore], labels_ignore=labels[ignore])
        if 'gt_instances' not in sample:
            raise ValueError('VOCMetric: the samples carry no ground truth; keep `instances` or '
                             '`gt_instances` in the test pipeline (LoadAnnotations, PackDetInputs).')
        gt = sample['gt_instances']
        ignored = sample.get('ignored_instances', {})
        return dict(bboxes=to_numpy(gt['bboxes']).reshape(-1, 4).astype(np.float64),
                    labels=to_numpy(gt['labels']).reshape(-1).astype(np.int64),
                    bboxes_ignore=to_numpy(ignored.get('bboxes', np.zeros((0, 4)))).reshape(-1, 4)
                    .astype(np.float64),
                    labels_ignore=to_numpy(ignored.get('labels', np.zeros(0))).reshape(-1).astype(np.int64))

    # ------------------------------------------------------------------ evaluation
    def _legacy(self) -> bool:
        if self.use_legacy_coordinate is not None:
            return bool(self.use_legacy_coordinate)
        return self.dataset_meta.get('dataset_type') in VOC_DATASET_TYPES

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results) if results else ((), ())
        legacy = self._legacy()
        eval_results = OrderedDict()
        if self.metric == 'recall':
            gt_boxes = [gt['bboxes'] for gt in gts]
            proposals = [np.vstack(dets) for dets in preds]
            recalls = eval_recalls(gt_boxes, proposals, self.proposal_nums, self.iou_thrs, legacy)
            for i, num in enumerate(self.proposal_nums):
                for j, thr in enumerate(self.iou_thrs):
                    eval_results[f'recall@{num}@{thr}'] = float(recalls[i, j])
            if recalls.shape[1] > 1:
                for i, num in enumerate(self.proposal_nums):
                    eval_results[f'AR@{num}'] = float(recalls[i].mean())
            return eval_results

        dataset_type = self.dataset_meta.get('dataset_type')
        expected_mode = {'VOC2007': '11points', 'VOC2012': 'area'}.get(dataset_type)
        if expected_mode is not None and expected_mode != self.eval_mode:
            logger.warning(f'Pascal {dataset_type} is evaluated with eval_mode={expected_mode!r} '
                           f'by its benchmark, but eval_mode={self.eval_mode!r} is used.')
        classes = list(self.dataset_meta['classes'])
        suffixes = ([''] if self.scale_ranges is None
                    else [f'_{lo}-{hi}' for lo, hi in self.scale_ranges])
        per_thr = []
        for thr in self.iou_thrs:
            mean_ap, class_results = eval_map(preds, gts, iou_thr=thr, scale_ranges=self.scale_ranges,
                                              eval_mode=self.eval_mode, use_legacy_coordinate=legacy)
            mean_aps = [mean_ap] if self.scale_ranges is None else mean_ap
            per_thr.append(mean_aps)
            for k, suffix in enumerate(suffixes):
                eval_results[f'AP{int(thr * 100):02d}{suffix}'] = float(mean_aps[k])
            self._log_table(thr, classes, class_results, mean_aps, suffixes, logger)
        per_thr = np.array(per_thr)
        for k, suffix in reversed(list(enumerate(suffixes))):
            eval_results[f'mAP{suffix}'] = float(per_thr[:, k].mean())
            eval_results.move_to_end(f'mAP{suffix}', last=False)
        return eval_results

    @staticmethod
    def _log_table(thr: float, classes: List[str], class_results: List[dict], mean_aps: List[float],
                   suffixes: List[str], logger: MMLogger) -> None:
        """Log class | gts | dets | recall | ap (one table per scale range) for one IoU threshold."""
        for k, suffix in enumerate(suffixes):
            rows = []
            for name, res in zip(classes, class_results):
                recall = np.atleast_2d(res['recall'])[k]
                num_gts = np.atleast_1d(res['num_gts'])[k]
                ap = np.atleast_1d(res['ap'])[k]
                rows.append([name, int(num_gts), res['num_dets'], f'{recall[-1] if recall.size else 0.0:.3f}',
                             f'{ap:.3f}'])
            rows.append(['mAP', '', '', '', f'{mean_aps[k]:.3f}'])
            title = f'iou_thr: {thr}' + (f', scale range{suffix}' if suffix else '')
            print_log(f'\n---------- {title} ----------\n'
                      + format_table(['class', 'gts', 'dets', 'recall', 'ap'], rows), logger=logger)


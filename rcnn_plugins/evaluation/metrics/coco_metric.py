"""``CocoMetric``: COCO-style box AP / AR through pycocotools' ``COCOeval``.

Names, arguments, defaults and returned keys follow MMDetection 3.x's ``CocoMetric`` so its
configs work unchanged; mmengine prefixes the keys with ``coco/`` (``default_prefix``):

- ``metric='bbox'``: ``bbox_mAP``, ``bbox_mAP_50``, ``bbox_mAP_75``, ``bbox_mAP_s``,
  ``bbox_mAP_m``, ``bbox_mAP_l`` (or the ``metric_items`` asked for, e.g. ``'AR@100'`` gives
  ``bbox_AR@100``); with ``classwise=True`` also ``{class}_precision`` and a per-class table.
- ``metric='proposal'``: class-agnostic recall ``AR@100``, ``AR@300``, ``AR@1000``, ``AR_s@1000``,
  ``AR_m@1000``, ``AR_l@1000`` (``COCOeval`` with ``useCats=0``).
- ``metric='proposal_fast'``: ``AR@{n}`` from our own greedy recall (no COCOeval), like MMDetection.

``COCOeval`` is configured as MMDetection does: ``params.maxDets = list(proposal_nums)`` and
``params.iouThrs = iou_thrs``. ``COCOeval.summarize`` then reads ``mAP`` at 100 detections per
image (its fixed default, found at ``maxDets[0]``) and ``mAP_50`` ... ``mAP_l`` at ``maxDets[2]``
(1000); for a detector that keeps at most 100 per image all equal plain COCOeval's numbers
(``maxDets=[1, 10, 100]``). Reported values are rounded to 3 decimals, as MMDetection
(``0.9999999999999998`` is reported as ``1.0``); the unrounded arrays stay in ``last_eval``.

Label ``i`` is the category named ``dataset_meta['classes'][i]`` (``CocoDataset``'s mapping), and
every image of the ground truth is evaluated (as MMDetection: an image never processed counts
its objects as missed).

``backend='faster_coco_eval'`` runs the matching and accumulation in the ``faster-coco-eval``
package's C++ ``COCOeval_faster`` (optional extra ``eval``: ``pip install 'rcnn_plugins[eval]'``)
instead of pycocotools' Python loops; the summary is then read from its precision/recall arrays
with pycocotools' own ``summarize``, so every returned number equals the ``'pycocotools'`` backend's
(tests/evaluation/metrics/test_coco_metric_backend.py; ``tools/benchmark_eval.py`` times both on a COCO-sized case).

Ground truth comes from ``ann_file``. Without one, a COCO ground truth is built from each sample's
``instances`` (original-image xyxy boxes, ``bbox_label``, ``ignore_flag``; ignored boxes become
crowd annotations), as MMDetection does.
"""
import contextlib
import io
import json
import logging
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump, get_local_path
from mmengine.logging import MMLogger, print_log
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from rcnn_plugins.datasets.coco import COCO_CLASSES
from rcnn_plugins.registry import METRICS
from ..functional import eval_recalls, format_table, to_numpy

# Index of each reportable item in ``COCOeval.stats`` (pycocotools' summarize order).
COCO_STATS_INDEX = {
    'mAP': 0, 'mAP_50': 1, 'mAP_75': 2, 'mAP_s': 3, 'mAP_m': 4, 'mAP_l': 5,
    'AR@100': 6, 'AR@300': 7, 'AR@1000': 8, 'AR_s@1000': 9, 'AR_m@1000': 10, 'AR_l@1000': 11,
}
DEFAULT_BBOX_ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l']
DEFAULT_PROPOSAL_ITEMS = ['AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000']


class _ArgumentError(ValueError, AssertionError):
    """A bad argument: a ``ValueError``, and an ``AssertionError`` as MMDetection raises there."""


def xyxy_to_xywh(bboxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) COCO x, y, w, h (no +1 on the widths)."""
    out = bboxes.astype(np.float64, copy=True)
    out[:, 2:] -= out[:, :2]
    return out


def _coco_eval_class(backend: str):
    """The ``COCOeval`` class of a backend name."""
    if backend == 'pycocotools':
        return COCOeval
    if backend == 'faster_coco_eval':
        try:
            from faster_coco_eval import COCOeval_faster
        except ImportError as e:
            raise ImportError("CocoMetric(backend='faster_coco_eval') needs the faster-coco-eval package: "
                              "pip install 'rcnn_plugins[eval]' (or faster-coco-eval), or use "
                              "backend='pycocotools'") from e
        return COCOeval_faster
    raise ValueError(f"CocoMetric: backend must be 'pycocotools' or 'faster_coco_eval', got {backend!r}")


def _to_faster_coco(coco_gt: COCO):
    """The same ground truth as a ``faster_coco_eval.COCO`` (its evaluator needs its own index)."""
    from faster_coco_eval import COCO as FasterCOCO
    faster = FasterCOCO()
    faster.dataset = coco_gt.dataset
    with contextlib.redirect_stdout(io.StringIO()):
        faster.createIndex()
    return faster


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO evaluation of detections or proposals (see module docstring).

    Args:
        ann_file: COCO json with the ground truth; ``None`` builds it from the samples' ``instances``.
        metric: ``'bbox'``, ``'proposal'``, ``'proposal_fast'`` or a list of them.
        classwise: also report and print per-class AP.
        proposal_nums: detections per image for the recall items; also ``COCOeval.params.maxDets``.
        iou_thrs: IoU thresholds; default 0.50:0.05:0.95.
        metric_items: which items of ``COCO_STATS_INDEX`` to return; default by metric.
        format_only: only write ``{outfile_prefix}.bbox.json``, return ``{}``.
        outfile_prefix: where results (and a converted ground truth) are written; a temporary
            folder when ``None``.
        sort_categories: accepted for MMDetection configs, no effect: labels are mapped to
            categories by name (as ``CocoDataset`` does), so the file's category order never
            matters (MMDetection needs this switch because it maps by file order).
        use_mp_eval: accepted for MMDetection configs; evaluation always runs in one process
            (the numbers are the same).
        backend_args: mmengine file backend arguments used to read ``ann_file``.
        backend: ``'pycocotools'`` or ``'faster_coco_eval'`` (same numbers, several times faster;
            needs the ``faster-coco-eval`` package).
        collect_device, prefix: see mmengine's ``BaseMetric``.
    """

    default_prefix: Optional[str] = 'coco'
    allowed_metrics = ('bbox', 'proposal', 'proposal_fast')

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 classwise: bool = False,
                 proposal_nums: Sequence[int] = (100, 300, 1000),
                 iou_thrs: Optional[Union[float, Sequence[float]]] = None,
                 metric_items: Optional[Sequence[str]] = None,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 sort_categories: bool = False,
                 use_mp_eval: bool = False,
                 backend_args: Optional[dict] = None,
                 backend: str = 'pycocotools',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        for m in self.metrics:
            if m not in self.allowed_metrics:
                raise KeyError(f"CocoMetric: metric must be one of {self.allowed_metrics}, got {m!r}")
        self.classwise = classwise
        self.proposal_nums = list(proposal_nums)
        if iou_thrs is None:
            iou_thrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
        # Kept as given (a float, list or array), as MMDetection does: user code compares it.
        self.iou_thrs = iou_thrs
        self.metric_items = list(metric_items) if metric_items is not None else None
        if self.metric_items is not None:
            for item in self.metric_items:
                if item not in COCO_STATS_INDEX:
                    raise KeyError(f'CocoMetric: metric item {item!r} is not supported; '
                                   f'choose from {list(COCO_STATS_INDEX)}')
        if format_only and outfile_prefix is None:
            # MMDetection asserts here (a temporary directory would be deleted with the results).
            raise _ArgumentError('CocoMetric: format_only=True needs outfile_prefix to know where to write the '
                                 'results json (without it they would go to a temporary directory, then be deleted)')
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        if use_mp_eval:
            print_log('CocoMetric: use_mp_eval is not implemented; evaluating in one process '
                      '(same numbers, slower).', logger='current', level=logging.WARNING)
        self.backend_args = backend_args
        self._coco_eval_cls = _coco_eval_class(backend)
        self.backend = backend

        # ``COCOeval.eval`` arrays of the last evaluation, by metric (precision-recall curves
        # are drawn from them: rcnn_plugins.analysis.pr_curve).
        self.last_eval: Dict[str, dict] = {}
        self._coco_api: Optional[COCO] = None
        if ann_file is not None:
            with get_local_path(ann_file, backend_args=backend_args) as local_path, \
                    contextlib.redirect_stdout(io.StringIO()):
                self._coco_api = COCO(local_path)

    def _iou_thr_array(self) -> np.ndarray:
        """``iou_thrs`` as the (T,) float64 array COCOeval and the recall need."""
        return np.atleast_1d(np.asarray(self.iou_thrs, dtype=np.float64))

    # ------------------------------------------------------------------ collection
    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep predictions (numpy) and what is needed of the ground truth for each sample."""
        for sample in data_samples:
            pred = sample['pred_instances']
            result = dict(img_id=sample['img_id'],
                          bboxes=to_numpy(pred['bboxes']).reshape(-1, 4),
                          scores=to_numpy(pred['scores']).reshape(-1),
                          labels=to_numpy(pred['labels']).reshape(-1).astype(np.int64))
            gt = dict(img_id=sample['img_id'], height=int(sample['ori_shape'][0]),
                      width=int(sample['ori_shape'][1]))
            if self._coco_api is None:
                if 'instances' not in sample:
                    raise ValueError(
                        'CocoMetric: ground truth is needed for evaluation. Set `ann_file` to the '
                        'COCO annotation json, or keep `instances` in the samples\' metainfo.')
                gt['anns'] = sample['instances']
            self.results.append((gt, result))

    # ------------------------------------------------------------------ conversion
    def gt_to_coco_json(self, gt_dicts: Sequence[dict], outfile_prefix: str) -> str:
        """Write the samples' ``instances`` as a COCO ground-truth json; returns its path.

        Category ids are the label indices 0..C-1; ``ignore_flag`` becomes ``iscrowd``.
        """
        categories = [dict(id=i, name=name) for i, name in enumerate(self.dataset_meta['classes'])]
        images, annotations = [], []
        for gt in gt_dicts:
            images.append(dict(id=gt['img_id'], width=gt['width'], height=gt['height'], file_name=''))
            for ann in gt['anns']:
                x1, y1, x2, y2 = (float(v) for v in ann['bbox'])
                annotations.append(dict(id=len(annotations) + 1, image_id=gt['img_id'],
                                        bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                                        category_id=int(ann['bbox_label']),
                                        iscrowd=int(ann.get('ignore_flag', 0))))
        path = f'{outfile_prefix}.gt.json'
        dump(dict(info=dict(description='COCO json converted by rcnn_plugins CocoMetric'),
                  images=images, categories=categories, annotations=annotations), path)
        return path

    def results2json(self, results: Sequence[dict], cat_ids: List[int], outfile_prefix: str) -> Dict[str, str]:
        """Write detections in COCO results format; returns ``{'bbox': path, 'proposal': path}``."""
        records = []
        for result in results:
            xywh = xyxy_to_xywh(result['bboxes'])
            for box, score, label in zip(xywh.tolist(), result['scores'].tolist(), result['labels'].tolist()):
                if cat_ids[label] is None:  # a class the ground truth does not define
                    continue
                records.append(dict(image_id=result['img_id'], bbox=box, score=float(score),
                                    category_id=cat_ids[label]))
        path = f'{outfile_prefix}.bbox.json'
        dump(records, path)
        # Proposals are scored with the same file (class-agnostically), as in MMDetection.
        return dict(bbox=path, proposal=path)

    # ------------------------------------------------------------------ evaluation
    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results) if results else ((), ())

        tmp_dir = None
        outfile_prefix = self.outfile_prefix
        if outfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            outfile_prefix = osp.join(tmp_dir.name, 'results')
        try:
            coco_gt = self._coco_api
            if coco_gt is None:
                logger.info('CocoMetric: converting ground truth from the samples to COCO format')
                with contextlib.redirect_stdout(io.StringIO()):
                    coco_gt = COCO(self.gt_to_coco_json(gts, outfile_prefix))
            label_cat_ids = self._label_to_cat_ids(coco_gt)
            result_files = self.results2json(preds, label_cat_ids, outfile_prefix)
            cat_ids = [cat_id for cat_id in label_cat_ids if cat_id is not None]
            if self.format_only:
                logger.info(f'CocoMetric: results written to {result_files["bbox"]}')
                return OrderedDict()
            eval_results = OrderedDict()
            for metric in self.metrics:
                logger.info(f'Evaluating {metric}...')
                if metric == 'proposal_fast':
                    eval_results.update(self._fast_eval_recall(coco_gt, preds, logger))
                else:
                    eval_results.update(self._coco_eval(metric, coco_gt, cat_ids, result_files[metric], logger))
            return eval_results
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()

    def _label_to_cat_ids(self, coco_gt: COCO) -> List[Optional[int]]:
        """Category id of each label: label ``i`` is the category named ``classes[i]`` (None for a
        default COCO class the file does not define).

        This is how ``CocoDataset`` maps them, whatever the order of the file's categories (a
        user's class subset or reordering stays consistent between dataset and metric).
        """
        ids_by_name: Dict[str, int] = {}
        for cat in coco_gt.dataset['categories']:
            ids_by_name.setdefault(cat['name'], cat['id'])
        classes = list(self.dataset_meta['classes'])
        missing = [name for name in classes if name not in ids_by_name]
        # The default 80 classes over a file that defines some of them (CocoDataset loads that
        # subset): the missing classes have no ground truth and their detections are left out.
        if missing and not (tuple(classes) == COCO_CLASSES and len(missing) < len(classes)):
            raise ValueError(f'CocoMetric: classes {missing} are not categories of the annotation file')
        if missing:
            print_log(f'CocoMetric: {len(missing)} of the 80 COCO classes are not categories of the annotation '
                      'file; their detections are not evaluated.', logger='current', level=logging.WARNING)
        return [ids_by_name.get(name) for name in classes]

    def _coco_eval(self, metric: str, coco_gt: COCO, cat_ids: List[int], result_file: str,
                   logger: MMLogger) -> Dict[str, float]:
        """Run COCOeval configured as MMDetection does and read the requested stats."""
        if metric == 'proposal':
            items = self.metric_items or DEFAULT_PROPOSAL_ITEMS
            key_of = {item: item for item in items}
        else:
            items = self.metric_items or DEFAULT_BBOX_ITEMS
            key_of = {item: f'{metric}_{item}' for item in items}

        with open(result_file) as f:
            detections = json.load(f)
        if not detections:
            # COCO.loadRes cannot take an empty list; nothing detected means zero AP and AR.
            logger.warning('CocoMetric: there are no detections in the whole dataset; '
                           'all metrics are 0.')
            return OrderedDict((key_of[item], 0.0) for item in items)

        if self.backend == 'faster_coco_eval':
            coco_gt = _to_faster_coco(coco_gt)
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(detections)
        coco_eval = self._coco_eval_cls(coco_gt, coco_dt, 'bbox')
        coco_eval.params.catIds = cat_ids
        coco_eval.params.imgIds = coco_gt.getImgIds()
        coco_eval.params.maxDets = list(self.proposal_nums)
        coco_eval.params.iouThrs = self._iou_thr_array()
        if metric == 'proposal':
            coco_eval.params.useCats = 0
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            coco_eval.evaluate()
            coco_eval.accumulate()
            # pycocotools' summarize on either backend's eval arrays (same layout): faster-coco-eval's
            # own summarize reads AP at maxDets[-1] and orders stats differently.
            COCOeval.summarize(coco_eval)
        print_log('\n' + summary.getvalue(), logger=logger)
        # ``precision``'s class axis follows ``eval_cat_ids`` (sorted); ``label_cat_ids[i]`` is label i's.
        self.last_eval[metric] = dict(precision=coco_eval.eval['precision'], eval_cat_ids=list(coco_eval.params.catIds),
                                      label_cat_ids=list(cat_ids),
                                      iou_thrs=np.asarray(coco_eval.params.iouThrs),
                                      rec_thrs=np.asarray(coco_eval.params.recThrs),
                                      max_dets=list(coco_eval.params.maxDets))

        eval_results = OrderedDict()
        if metric == 'bbox' and self.classwise:
            eval_results.update(self._classwise(coco_eval, coco_gt, cat_ids, logger))
        for item in items:
            eval_results[key_of[item]] = round(float(coco_eval.stats[COCO_STATS_INDEX[item]]), 3)
        if metric == 'bbox':
            ap = coco_eval.stats[:6]
            logger.info(f'{metric}_mAP_copypaste: ' + ' '.join(f'{v:.3f}' for v in ap))
        return eval_results

    def _classwise(self, coco_eval: COCOeval, coco_gt: COCO, cat_ids: List[int],
                   logger: MMLogger) -> Dict[str, float]:
        """Per-class AP table (mAP, AP50, AP75, APs/m/l) and ``{class}_precision`` = class mAP.

        ``eval['precision']`` is (iou, recall, class, area, maxDets); -1 marks "no ground truth",
        so a class without any reports nan. Its class axis follows ``params.catIds``, which
        ``COCOeval.evaluate`` sorts by id, so each class is looked up by its category id.
        """
        precisions = coco_eval.eval['precision']
        class_index = {cat_id: i for i, cat_id in enumerate(coco_eval.params.catIds)}
        iou_thrs = np.asarray(coco_eval.params.iouThrs)

        def mean_ap(p: np.ndarray) -> float:
            p = p[p > -1]
            return float(np.mean(p)) if p.size else float('nan')

        rows, results = [], OrderedDict()
        for cat_id in cat_ids:
            idx = class_index[cat_id]
            name = coco_gt.loadCats(cat_id)[0]['name']
            ap = mean_ap(precisions[:, :, idx, 0, -1])
            results[f'{name}_precision'] = round(ap, 3)
            row = [name, ap]
            for thr in (0.5, 0.75):
                at_thr = np.flatnonzero(np.isclose(iou_thrs, thr))
                row.append(mean_ap(precisions[at_thr[0], :, idx, 0, -1]) if at_thr.size else float('nan'))
            row += [mean_ap(precisions[:, :, idx, area, -1]) for area in (1, 2, 3)]
            rows.append([row[0]] + [f'{v:.3f}' for v in row[1:]])
        headers = ['category', 'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l']
        print_log('\n' + format_table(headers, rows), logger=logger)
        return results

    def _fast_eval_recall(self, coco_gt: COCO, preds: Sequence[dict], logger: MMLogger) -> Dict[str, float]:
        """Class-agnostic recall averaged over ``iou_thrs`` for the top ``proposal_nums`` boxes.

        Crowd / ignored annotations are left out of the ground truth; proposals are taken in
        score order.
        """
        gt_bboxes, proposals = [], []
        for pred in preds:
            anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=pred['img_id']))
            boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                     for a in anns if not (a.get('ignore', False) or a.get('iscrowd', 0))]
            gt_bboxes.append(np.array(boxes, dtype=np.float64).reshape(-1, 4))
            proposals.append(np.hstack([pred['bboxes'], pred['scores'][:, None]]))
        recalls = eval_recalls(gt_bboxes, proposals, self.proposal_nums, self._iou_thr_array())
        ar = recalls.mean(axis=1)
        results = OrderedDict((f'AR@{num}', float(ar[i])) for i, num in enumerate(self.proposal_nums))
        logger.info(' '.join(f'{k}: {v:.4f}' for k, v in results.items()))
        return results


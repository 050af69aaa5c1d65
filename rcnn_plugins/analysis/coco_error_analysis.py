"""COCO error analysis (Hoiem et al.'s breakdown, as the COCO API's analyze() and MMDetection's
``tools/analysis_tools/coco_error_analysis.py``): what each kind of error costs in precision.

For each class and area range, seven precision-recall curves, each from COCOeval at 100
detections per image, every one forgiving one more kind of error than the last:

- ``C75``: PR at IoU 0.75;  ``C50``: at IoU 0.5;  ``Loc``: at IoU 0.1 (localisation errors forgiven);
- ``Sim``: IoU 0.1 with the ground truths of the *other classes of the same supercategory* turned
  into ignore regions of this class (confusion with similar classes forgiven);
- ``Oth``: the same with the ground truths of *every* other class (all class confusion forgiven);
- ``BG``: precision 1 wherever ``Oth`` reaches (background false positives forgiven);
- ``FN``: precision 1 at every recall (missed objects forgiven).

``analyze_results`` returns the array ``ps`` of shape (7, R=101 recall points, K classes, 4 areas
[all, small, medium, large], 1) with -1 ("no ground truth") replaced by 0, as MMDetection's tool;
:mod:`.coco_error_plots` draws it. The per-class runs evaluate only that class (MMDetection
evaluates every class each time and keeps one column: same numbers, K times the work).
"""
import contextlib
import copy
import io
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ERROR_TYPES = ('C75', 'C50', 'Loc', 'Sim', 'Oth', 'BG', 'FN')
AREA_NAMES = ('allarea', 'small', 'medium', 'large')
DEFAULT_AREAS = (1024, 9216, 10000000000)


def _area_ranges(areas: Sequence[float]):
    """MMDetection's ``--areas a b c``: all = [0, c], small = [0, a], medium = [a, b], large = [b, c]."""
    return [[0, areas[2]], [0, areas[0]], [areas[0], areas[1]], [areas[1], areas[2]]]


def _quiet_coco(ann_file: str) -> COCO:
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file {ann_file} not found (--ann)')
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(ann_file)


def _evaluate(coco_gt: COCO, coco_dt: COCO, iou_type: str, iou_thrs, areas, cat_ids=None) -> np.ndarray:
    """COCOeval precision (T, R, K, A, M=1) at 100 detections per image."""
    ev = COCOeval(coco_gt, coco_dt, iou_type)
    ev.params.imgIds = coco_gt.getImgIds()
    ev.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
    ev.params.maxDets = [100]
    ev.params.areaRng = _area_ranges(areas)
    ev.params.areaRngLbl = list(AREA_NAMES)
    if cat_ids is not None:
        ev.params.catIds = list(cat_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    return ev.eval['precision']


def _gt_confusion_ignored(coco_gt: COCO, cat_id: int, forgiven: set) -> COCO:
    """A copy of the ground truth where the boxes of the classes in ``forgiven`` become crowd
    (ignore) regions of class ``cat_id``: a detection of ``cat_id`` on them is neither a true
    nor a false positive."""
    dataset = copy.deepcopy(coco_gt.dataset)
    for ann in dataset['annotations']:
        if ann['category_id'] in forgiven:
            ann.update(ignore=1, iscrowd=1, category_id=cat_id)
    gt = COCO()
    gt.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def _only_class(coco_dt: COCO, cat_id: int) -> COCO:
    dt = COCO()
    dt.dataset = dict(coco_dt.dataset, annotations=[a for a in coco_dt.dataset['annotations']
                                                    if a['category_id'] == cat_id])
    with contextlib.redirect_stdout(io.StringIO()):
        dt.createIndex()
    return dt


def analyze_results(res_file: str, ann_file: str, res_types: Sequence[str] = ('bbox',), out_dir: Optional[str] = None,
                    extraplots: bool = False, areas: Sequence[float] = DEFAULT_AREAS,
                    score_thr: Optional[float] = None) -> Dict[str, np.ndarray]:
    """Error breakdown of a COCO results json against ``ann_file``; PNGs into ``out_dir/<type>/``.

    Args:
        res_file: COCO results json (``[{image_id, category_id, bbox [x, y, w, h], score}, ...]``),
            e.g. from ``CocoMetric(format_only=True, outfile_prefix=...)`` or ``tools/infer.py --coco-json``.
        ann_file: the COCO ground truth.
        res_types: ``('bbox',)`` (``'segm'`` needs masks, which this package does not produce).
        out_dir: where the plots go (``None``: no plots, numbers only).
        extraplots: also the per-area bar plots, the annotation counts per area and the area histogram.
        areas: the three area limits (pixels^2) of small / medium / large.
        score_thr: drop detections scoring below this first.

    Returns:
        ``{res_type: ps}`` with ``ps`` (7, 101, K, 4, 1), classes in ``getCatIds()`` order.
    """
    for res_type in res_types:
        if res_type != 'bbox':
            raise ValueError(f"result type {res_type!r} is not available: only 'bbox' (no masks in rcnn_plugins)")
    if len(areas) != 3:
        raise ValueError(f'areas: give 3 area limits (small, medium, all), got {list(areas)}')
    if score_thr is not None and score_thr < 0:
        raise ValueError(f'score_thr must be >= 0, got {score_thr}')
    if not osp.isfile(res_file):
        raise FileNotFoundError(f'results file {res_file} not found')
    coco_gt = _quiet_coco(ann_file)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(res_file)
    if score_thr:
        coco_dt.dataset['annotations'] = [a for a in coco_dt.dataset['annotations'] if a['score'] >= score_thr]
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt.createIndex()
    cat_ids = coco_gt.getCatIds()
    results = {}
    for res_type in res_types:
        ps = _evaluate(coco_gt, coco_dt, res_type, [0.75, 0.5, 0.1], areas)
        ps = np.concatenate([ps, np.zeros((4, *ps.shape[1:]))])
        for k, cat_id in enumerate(cat_ids):
            cat = coco_gt.loadCats(cat_id)[0]
            dt = _only_class(coco_dt, cat_id)
            same_super = {c for c in coco_gt.getCatIds(supNms=[cat.get('supercategory')])} - {cat_id} \
                if cat.get('supercategory') is not None else set()
            everyone = set(cat_ids) - {cat_id}
            for row, forgiven in ((3, same_super), (4, everyone)):
                gt = _gt_confusion_ignored(coco_gt, cat_id, forgiven)
                ps[row, :, k] = _evaluate(gt, dt, res_type, [0.1], areas, cat_ids=[cat_id])[0, :, 0]
        ps[ps == -1] = 0
        ps[5] = ps[4] > 0
        ps[6] = 1.0
        results[res_type] = ps
        if out_dir is not None:
            from .coco_error_plots import plot_error_analysis
            type_dir = osp.join(out_dir, res_type)
            os.makedirs(type_dir, exist_ok=True)
            names = [coco_gt.loadCats(c)[0]['name'] for c in cat_ids]
            rec_thrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
            plot_error_analysis(ps, rec_thrs, names, type_dir, res_type, extraplots,
                                gt_areas=[a['area'] for a in coco_gt.dataset['annotations']])
    return results

"""Per-class precision-recall curves from COCOeval, for saved predictions.

``COCOeval.accumulate`` interpolates precision at 101 recall points (0, 0.01, ..., 1) per IoU
threshold, class, area range and detection limit; the area under a class's curve at one IoU
threshold is that class's AP there. These are the curves behind ``coco/bbox_mAP_50`` and friends.
"""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.config import Config

from .evaluate import build_evaluator, build_test_dataset, evaluate_results, test_metric_cfgs


def coco_pr_curves(cfg: Config, results: Sequence[dict], iou_thr: float = 0.5, dataset=None) -> dict:
    """Evaluate ``results`` with the config's ``CocoMetric`` and return its PR curves at ``iou_thr``.

    Returns ``dict(recall=(101,), precision={class: (101,)}, ap={class: float}, metrics=dict)``:
    precision at each recall point for all areas and at most 100 detections per image (COCO's
    AP setting); a class without ground truth has no curve (nan AP).
    """
    dataset = dataset if dataset is not None else build_test_dataset(cfg)
    coco_metrics = [m for m in test_metric_cfgs(cfg) if m.get('type') == 'CocoMetric']
    if not coco_metrics:
        raise ValueError('precision-recall curves come from COCOeval: the config\'s test_evaluator '
                         'has no CocoMetric (VOC configs: evaluate with VOCMetric instead)')
    metric_cfg = dict(coco_metrics[0], metric='bbox')
    evaluator = build_evaluator(cfg, dataset, metrics=[metric_cfg])
    metrics = evaluate_results(cfg, results, dataset=dataset, evaluator=evaluator)
    last = evaluator.metrics[0].last_eval.get('bbox')
    if last is None:   # no detection at all in the whole set: COCOeval never ran
        raise ValueError('the results hold no detection at all: there is no precision-recall curve to draw')

    at_thr = np.flatnonzero(np.isclose(last['iou_thrs'], iou_thr))
    if not at_thr.size:
        raise ValueError(f'IoU threshold {iou_thr} is not one of the metric\'s iou_thrs {last["iou_thrs"].tolist()}')
    max_det = last['max_dets'].index(100) if 100 in last['max_dets'] else len(last['max_dets']) - 1
    class_index = {cat_id: i for i, cat_id in enumerate(last['eval_cat_ids'])}
    precision: Dict[str, np.ndarray] = {}
    ap: Dict[str, float] = {}
    for name, cat_id in zip(dataset.metainfo['classes'], last['label_cat_ids']):
        p = last['precision'][at_thr[0], :, class_index[cat_id], 0, max_det]   # (101,), -1: no gt
        if (p > -1).any():
            precision[name] = p
            ap[name] = float(p.mean())
        else:
            ap[name] = float('nan')
    return dict(recall=last['rec_thrs'], precision=precision, ap=ap, iou_thr=iou_thr, metrics=metrics)


def plot_pr_curves(curves: dict, out_file: Optional[str] = None, title: Optional[str] = None):
    """One line per class (legend: its AP) and their mean; returns the figure, saved to ``out_file``."""
    import matplotlib
    if out_file is not None:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 6))
    recall = curves['recall']
    for name, precision in curves['precision'].items():
        ax.plot(recall, precision, linewidth=1.2, label=f'{name} (AP {curves["ap"][name]:.3f})')
    if curves['precision']:
        mean = np.mean(np.stack(list(curves['precision'].values())), axis=0)
        ax.plot(recall, mean, 'k--', linewidth=2, label=f'mean (mAP {mean.mean():.3f})')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel('recall')
    ax.set_ylabel('precision')
    ax.grid(alpha=0.3)
    ax.set_title(title or f'Precision-recall at IoU {curves["iou_thr"]:.2f} (COCOeval, all areas, 100 dets)')
    ax.legend(fontsize=7, loc='lower left', ncol=1 + len(curves['precision']) // 20)
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
        plt.close(fig)
    return fig

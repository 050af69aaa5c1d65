"""Confusion matrix of saved detections against a dataset's ground truth (MMDetection's semantics).

The matrix is ``(C + 1, C + 1)``: rows are ground-truth classes, columns predicted classes, the
last row and column "background". Per image, with the detections scoring at least ``score_thr``
(optionally class-wise NMS'ed first) and IoU against every ground-truth box:

- a detection overlapping a ground-truth box by ``>= tp_iou_thr`` adds one to
  ``[gt class, detected class]`` for every such box (a true positive on the diagonal, a confusion
  elsewhere);
- a detection overlapping none adds one to ``[background, detected class]`` (false positive);
- a ground-truth box that no detection of its own class matched adds one to
  ``[gt class, background]`` (missed).
"""
from typing import Optional, Sequence

import numpy as np
import torch

from ..evaluation.functional import bbox_overlaps_np, to_numpy
from ..models.layers import batched_nms


def _image_matrix(gt_bboxes: np.ndarray, gt_labels: np.ndarray, det_bboxes: np.ndarray, det_labels: np.ndarray,
                  num_classes: int, tp_iou_thr: float) -> np.ndarray:
    """One image's ``(C + 1, C + 1)`` counts (see module docstring); boxes xyxy, same pixels."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    matched = bbox_overlaps_np(det_bboxes, gt_bboxes) >= tp_iou_thr            # (D, G)
    det_idx, gt_idx = np.nonzero(matched)
    np.add.at(matrix, (gt_labels[gt_idx], det_labels[det_idx]), 1)
    np.add.at(matrix, (num_classes, det_labels[~matched.any(axis=1)]), 1)
    found = (matched & (det_labels[:, None] == gt_labels[None, :])).any(axis=0)  # (G,)
    np.add.at(matrix, (gt_labels[~found], num_classes), 1)
    return matrix


def calculate_confusion_matrix(dataset, results: Sequence[dict], score_thr: float = 0.0,
                               nms_iou_thr: Optional[float] = None, tp_iou_thr: float = 0.5) -> np.ndarray:
    """``(C + 1, C + 1)`` int64 counts over the whole dataset (see module docstring).

    Args:
        dataset: the test dataset (``CocoDataset`` / ``VOCDataset``), in the order the results
            were written; its ``instances`` give the ground truth in original-image pixels
            (ignored boxes left out).
        results: one dict per image with ``pred_instances`` (``bboxes`` (K, 4) original-image
            xyxy, ``scores`` (K,), ``labels`` (K,)), e.g. ``load_results('results.pkl')``.
        score_thr: detections below this score are left out.
        nms_iou_thr: when given, class-wise NMS at this IoU first.
        tp_iou_thr: IoU at which a detection matches a ground-truth box.
    """
    if len(results) != len(dataset):
        raise ValueError(f'{len(results)} results for a dataset of {len(dataset)} images: the results '
                         f'file must come from tools/test.py on the same test set')
    num_classes = len(dataset.metainfo['classes'])
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for idx, result in enumerate(results):
        info = dataset.get_data_info(idx)
        if 'img_path' in result and result['img_path'] != info['img_path']:
            raise ValueError(f'result {idx} is for {result["img_path"]}, but image {idx} of the dataset '
                             f'is {info["img_path"]}: the results must be in the dataset\'s order')
        gts = [inst for inst in info['instances'] if not inst.get('ignore_flag', 0)]
        gt_bboxes = np.array([inst['bbox'] for inst in gts], dtype=np.float64).reshape(-1, 4)
        gt_labels = np.array([inst['bbox_label'] for inst in gts], dtype=np.int64)

        pred = result['pred_instances']
        bboxes = to_numpy(pred['bboxes']).reshape(-1, 4).astype(np.float64)
        scores = to_numpy(pred['scores']).reshape(-1)
        labels = to_numpy(pred['labels']).reshape(-1).astype(np.int64)
        keep = scores >= score_thr
        bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
        if nms_iou_thr is not None and len(bboxes):
            _, kept = batched_nms(torch.from_numpy(bboxes), torch.from_numpy(scores).double(),
                                  torch.from_numpy(labels), dict(type='nms', iou_threshold=nms_iou_thr))
            kept = kept.numpy()
            bboxes, labels = bboxes[kept], labels[kept]
        matrix += _image_matrix(gt_bboxes, gt_labels, bboxes, labels, num_classes, tp_iou_thr)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], out_file: Optional[str] = None,
                          title: str = 'Normalized confusion matrix (%)', color_theme: str = 'plasma'):
    """Draw the matrix normalised per ground-truth row (percent), each cell labelled.

    Returns the figure; saves it to ``out_file`` when given.
    """
    import matplotlib
    if out_file is not None:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(class_names) + ['background']
    rows = matrix.sum(axis=1, keepdims=True)
    percent = np.where(rows > 0, 100.0 * matrix / np.maximum(rows, 1), 0.0)
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(percent, cmap=color_theme, vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('ground truth')
    ax.set_title(title)
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j]:
                ax.text(j, i, f'{percent[i, j]:.0f}\n({matrix[i, j]})', ha='center', va='center',
                        color='white' if percent[i, j] < 60 else 'black', fontsize=7)
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, dpi=100)
        plt.close(fig)
    return fig

"""The PNGs of the COCO error analysis (:mod:`.coco_error_analysis`), with MMDetection's file
names: ``<type>-<class>-<area>.png`` per class and for ``allclass`` (stacked areas between the
seven PR curves, the legend giving each curve's AP), and with ``extraplots``
``<type>-<class>-ap bar plot.png``, ``number of annotations per area group.png`` and
``gt annotation areas histogram plot.png``.
"""
import os.path as osp
from typing import List, Sequence

import numpy as np

from .coco_error_analysis import AREA_NAMES, ERROR_TYPES

# Fill colours of the bands C75 .. FN: MMDetection's, except C75 / C50, white there (invisible on
# the white background), light grey / pale yellow here.
COLORS = [(0.80, 0.80, 0.80), (0.97, 0.93, 0.65), (0.31, 0.51, 0.74), (0.75, 0.31, 0.30), (0.36, 0.90, 0.38),
          (0.50, 0.39, 0.64), (1, 0.6, 0)]


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def make_pr_plot(rec_thrs: np.ndarray, ps: np.ndarray, out_dir: str, class_name: str, iou_type: str) -> List[str]:
    """``ps`` (7, R, [K,] 4, 1): one PNG per area; returns the paths."""
    plt = _pyplot()
    paths = []
    for a, area in enumerate(AREA_NAMES):
        area_ps = ps[..., a, 0]                       # (7, R) or (7, R, K)
        aps = [p.mean() for p in area_ps]
        curves = [np.zeros(len(rec_thrs))] + [p.mean(axis=1) if p.ndim > 1 else p for p in area_ps]
        title = f'{iou_type}-{class_name}-{area}'
        fig, ax = plt.subplots()
        for k, name in enumerate(ERROR_TYPES):
            ax.plot(rec_thrs, curves[k + 1], color=(0, 0, 0), linewidth=0.5)
            ax.fill_between(rec_thrs, curves[k], curves[k + 1], color=COLORS[k], label=f'[{aps[k]:.3f}]{name}')
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_xlim(0, 1.0)
        ax.set_ylim(0, 1.0)
        ax.set_title(title)
        ax.legend(loc='lower left')
        path = osp.join(out_dir, f'{title}.png')
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def _label_bars(ax, rects) -> None:
    for rect in rects:
        height = rect.get_height()
        text = f'{height * 100:2.0f}' if 0 < height <= 1 else f'{height:2.0f}'
        ax.annotate(text, xy=(rect.get_x() + rect.get_width() / 2, height), xytext=(0, 3),
                    textcoords='offset points', ha='center', va='bottom', fontsize='x-small')


def make_bar_plot(ps: np.ndarray, out_dir: str, class_name: str, iou_type: str) -> str:
    """AP of each error type but FN per area, as bars."""
    plt = _pyplot()
    fig, ax = plt.subplots()
    x = np.arange(len(AREA_NAMES))
    width = 0.6
    title = f'{iou_type}-{class_name}-ap bar plot'
    for i, name in enumerate(ERROR_TYPES[:-1]):
        type_ps = ps[i, ..., 0]
        aps = [p.mean() for p in type_ps.T]
        _label_bars(ax, ax.bar(x - width / 2 + (i + 1) * width / len(ERROR_TYPES), aps, width / len(ERROR_TYPES),
                               label=name))
    ax.set_ylabel('Mean Average Precision (mAP)')
    ax.set_title(title)
    ax.set_xticks(x)
    ax.set_xticklabels(AREA_NAMES)
    ax.legend()
    path = osp.join(out_dir, f'{title}.png')
    fig.savefig(path)
    plt.close(fig)
    return path


def make_area_plots(gt_areas: Sequence[float], out_dir: str) -> List[str]:
    """Ground-truth count per area group (COCO's default limits) and the histogram of sqrt(area)."""
    plt = _pyplot()
    areas = np.asarray(gt_areas, dtype=np.float64)
    counts = [len(areas), int((areas < 32 ** 2).sum()), int(((areas >= 32 ** 2) & (areas < 96 ** 2)).sum()),
              int((areas >= 96 ** 2).sum())]
    fig, ax = plt.subplots()
    title = 'number of annotations per area group'
    _label_bars(ax, ax.bar(np.arange(4), counts, 0.6))
    ax.set_ylabel('Number of annotations')
    ax.set_title(title)
    ax.set_xticks(np.arange(4))
    ax.set_xticklabels(['all', 'small', 'medium', 'large'])
    fig.tight_layout()
    first = osp.join(out_dir, f'{title}.png')
    fig.savefig(first)
    plt.close(fig)
    fig, ax = plt.subplots()
    title = 'gt annotation areas histogram plot'
    ax.hist(np.sqrt(areas), bins=100)
    ax.set_xlabel('Squareroot Area')
    ax.set_ylabel('Number of annotations')
    ax.set_title(title)
    fig.tight_layout()
    second = osp.join(out_dir, f'{title}.png')
    fig.savefig(second)
    plt.close(fig)
    return [first, second]


def plot_error_analysis(ps: np.ndarray, rec_thrs: np.ndarray, class_names: Sequence[str], out_dir: str,
                        iou_type: str, extraplots: bool, gt_areas: Sequence[float]) -> List[str]:
    """Every PNG of one result type; returns the paths."""
    paths = []
    for k, name in enumerate(class_names):
        paths += make_pr_plot(rec_thrs, ps[:, :, k], out_dir, name, iou_type)
        if extraplots:
            paths.append(make_bar_plot(ps[:, :, k], out_dir, name, iou_type))
    paths += make_pr_plot(rec_thrs, ps, out_dir, 'allclass', iou_type)
    if extraplots:
        paths.append(make_bar_plot(ps, out_dir, 'allclass', iou_type))
        paths += make_area_plots(gt_areas, out_dir)
    return paths

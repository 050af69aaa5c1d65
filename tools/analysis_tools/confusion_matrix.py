"""Confusion matrix of saved test predictions (MMDetection's tool and flags).

    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis_tools/confusion_matrix.py CONFIG results.pkl OUT_DIR [--score-thr 0.3]
        [--tp-iou-thr 0.5] [--nms-iou-thr 0.5] [--show] [--color-theme plasma] [--cfg-options k=v ...]

Writes OUT_DIR/confusion_matrix.png (row-normalised, percent and counts) and
OUT_DIR/confusion_matrix.json (the raw counts, rows = ground truth, columns = predictions, the
last of each is background).
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import DictAction

from rcnn_plugins.analysis import (build_test_dataset, calculate_confusion_matrix, load_config,
                                   load_results, plot_confusion_matrix)
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Confusion matrix from saved detections')
    parser.add_argument('config', help='the config the results were made with')
    parser.add_argument('prediction_path', help='results.pkl from tools/test.py --out')
    parser.add_argument('save_dir', help='where confusion_matrix.png / .json go')
    parser.add_argument('--show', action='store_true', help='display the matrix')
    parser.add_argument('--color-theme', default='plasma', help='matplotlib colour map')
    parser.add_argument('--score-thr', type=float, default=0.3, help='leave out detections scoring lower')
    parser.add_argument('--tp-iou-thr', type=float, default=0.5, help='IoU at which a detection matches')
    parser.add_argument('--nms-iou-thr', type=float, help='class-wise NMS at this IoU first')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    results = load_results(args.prediction_path)
    dataset = build_test_dataset(cfg)
    matrix = calculate_confusion_matrix(dataset, results, args.score_thr, args.nms_iou_thr, args.tp_iou_thr)
    os.makedirs(args.save_dir, exist_ok=True)
    classes = list(dataset.metainfo['classes'])
    with open(osp.join(args.save_dir, 'confusion_matrix.json'), 'w') as f:
        json.dump(dict(classes=classes + ['background'], matrix=matrix.tolist(), score_thr=args.score_thr,
                       tp_iou_thr=args.tp_iou_thr, nms_iou_thr=args.nms_iou_thr), f, indent=1)
    plot_confusion_matrix(matrix, classes, osp.join(args.save_dir, 'confusion_matrix.png'),
                          color_theme=args.color_theme)
    print(f'wrote {osp.join(args.save_dir, "confusion_matrix.png")} and confusion_matrix.json')
    if args.show:
        import matplotlib.pyplot as plt
        plot_confusion_matrix(matrix, classes, color_theme=args.color_theme)
        plt.show()


if __name__ == '__main__':
    main()

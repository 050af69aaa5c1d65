"""Per-class precision-recall curves (COCOeval) of saved test predictions, as a PNG.

    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis_tools/pr_curve.py CONFIG results.pkl --out pr.png [--iou-thr 0.5]

Also writes the curves' numbers next to the image (pr.json: recall points, precision per class, AP).
"""
import argparse
import json
import os.path as osp

from mmengine.config import DictAction

from rcnn_plugins.analysis import coco_pr_curves, load_config, load_results, plot_pr_curves
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Precision-recall curves from saved detections')
    parser.add_argument('config', help='the config the results were made with (a CocoMetric test_evaluator)')
    parser.add_argument('pkl_results', help='results.pkl from tools/test.py --out')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument('--iou-thr', type=float, default=0.5, help='IoU threshold of the curves (one of 0.5:0.95)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    curves = coco_pr_curves(cfg, load_results(args.pkl_results), iou_thr=args.iou_thr)
    plot_pr_curves(curves, args.out)
    numbers = osp.splitext(args.out)[0] + '.json'
    with open(numbers, 'w') as f:
        json.dump(dict(iou_thr=args.iou_thr, recall=curves['recall'].tolist(),
                       precision={k: v.tolist() for k, v in curves['precision'].items()}, ap=curves['ap']), f)
    print(f'wrote {args.out} and {numbers}')
    for name, ap in curves['ap'].items():
        print(f'{name}: AP@{args.iou_thr:g} {ap:.4f}')


if __name__ == '__main__':
    main()

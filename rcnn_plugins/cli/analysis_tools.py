"""The analysis commands behind ``tools/analysis_tools/*.py`` (MMDetection's tools and flags); the
work is :mod:`rcnn_plugins.analysis`'s. One ``*_main(argv=None)`` per tool:

    analyze_logs.py plot_curve LOG.json [LOG2.json] [--keys K ...] [--legend ...] [--out curves.png]
    analyze_logs.py cal_train_time LOG.json [--include-outliers]
    browse_dataset.py CONFIG --output-dir browse/ [--not-show] [--split train|val|test] [--max-images N]
    confusion_matrix.py CONFIG results.pkl OUT_DIR [--score-thr 0.3] [--tp-iou-thr 0.5] [--nms-iou-thr T]
    eval_metric.py CONFIG results.pkl
    get_flops.py CONFIG [--shape 800 1333]
    pr_curve.py CONFIG results.pkl --out pr.png [--iou-thr 0.5]
    coco_error_analysis.py RESULTS.json OUT_DIR --ann ANN.json [--extraplots] [--score-thr T] [--areas a b c]

(``results.pkl`` from ``tools/test.py CONFIG CHECKPOINT --out results.pkl``; the commands taking a
CONFIG take ``--cfg-options`` too.)
"""
import argparse
import json
import os.path as osp

from rcnn_plugins.fileio import atomic_write
from .common import add_config_flags, load_config
from .errors import UsageError, command


# ---- analyze_logs --------------------------------------------------------------------------------
def analyze_logs_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Analyse json training logs')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot keys of one or more logs')
    plot.add_argument('json_logs', nargs='+', help='vis_data/<timestamp>.json (or scalars.json) files')
    plot.add_argument('--keys', nargs='+', default=None,
                      help='keys to plot: loss terms, lr, time, or metrics (bbox_mAP = coco/bbox_mAP); '
                           'default: the loss terms the first log has over iterations')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--legend', nargs='+', help='a name per (log, key) line')
    plot.add_argument('--out', help='save the figure here (.png, .pdf, ...) instead of showing it')
    timing = sub.add_parser('cal_train_time', help='seconds per iteration, per epoch')
    timing.add_argument('json_logs', nargs='+')
    timing.add_argument('--include-outliers', action='store_true',
                        help='keep the first logged iteration of each epoch (data loader start-up)')
    return parser


@command
def analyze_logs_main(argv=None):
    from rcnn_plugins.analysis import cal_train_time, plot_curve
    args = analyze_logs_parser().parse_args(argv)
    if args.task == 'plot_curve':
        plot_curve(args.json_logs, args.keys, out=args.out, legend=args.legend, title=args.title)
        if args.out is None:
            import matplotlib.pyplot as plt
            plt.show()
        else:
            print(f'saved {args.out}')
        return
    for log in args.json_logs:
        t = cal_train_time(log, include_outliers=args.include_outliers)
        print(f'{"-" * 5}Analyze train time of {log}{"-" * 5}')
        print(f'slowest epoch {t["slowest_epoch"]}, average time is {t["per_epoch"][t["slowest_epoch"]]:.4f} s/iter')
        print(f'fastest epoch {t["fastest_epoch"]}, average time is {t["per_epoch"][t["fastest_epoch"]]:.4f} s/iter')
        print(f'time std over epochs is {t["std_over_epochs"]:.4f}')
        print(f'average iter time: {t["avg_iter_time"]:.4f} s/iter')


# ---- browse_dataset ------------------------------------------------------------------------------
def browse_dataset_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Browse a dataset after its pipeline')
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', help='write the drawings here')
    parser.add_argument('--not-show', action='store_true', help='do not display the drawings')
    parser.add_argument('--show-interval', type=float, default=2, help='seconds per displayed image')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='which dataloader\'s dataset and pipeline (default: train)')
    parser.add_argument('--max-images', type=int, help='stop after this many images')
    add_config_flags(parser, checkpoint=False)
    return parser


@command
def browse_dataset_main(argv=None):
    from rcnn_plugins.analysis import browse_dataset
    args = browse_dataset_parser().parse_args(argv)
    if args.not_show and args.output_dir is None:
        raise UsageError('--not-show without --output-dir would draw nothing; give --output-dir')
    cfg = load_config(args.config, args)
    written = browse_dataset(cfg, args.output_dir, split=args.split, max_images=args.max_images,
                             show=not args.not_show, show_interval=args.show_interval)
    if written:
        print(f'wrote {len(written)} images to {args.output_dir}')
    return written


# ---- confusion_matrix ----------------------------------------------------------------------------
def confusion_matrix_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Confusion matrix from saved detections: OUT_DIR/'
                                     'confusion_matrix.png (row-normalised) and .json (raw counts, rows = '
                                     'ground truth, columns = predictions, the last of each is background)')
    parser.add_argument('config', help='the config the results were made with')
    parser.add_argument('prediction_path', help='results.pkl from tools/test.py --out')
    parser.add_argument('save_dir', help='where confusion_matrix.png / .json go')
    parser.add_argument('--show', action='store_true', help='display the matrix')
    parser.add_argument('--color-theme', default='plasma', help='matplotlib colour map')
    parser.add_argument('--score-thr', type=float, default=0.3, help='leave out detections scoring lower')
    parser.add_argument('--tp-iou-thr', type=float, default=0.5, help='IoU at which a detection matches')
    parser.add_argument('--nms-iou-thr', type=float, help='class-wise NMS at this IoU first')
    add_config_flags(parser, checkpoint=False)
    return parser


@command
def confusion_matrix_main(argv=None):
    from rcnn_plugins.analysis import (
        build_test_dataset,
        calculate_confusion_matrix,
        load_results,
        plot_confusion_matrix,
    )
    args = confusion_matrix_parser().parse_args(argv)
    cfg = load_config(args.config, args)
    results = load_results(args.prediction_path)
    dataset = build_test_dataset(cfg)
    matrix = calculate_confusion_matrix(dataset, results, args.score_thr, args.nms_iou_thr, args.tp_iou_thr)
    classes = list(dataset.metainfo['classes'])
    with atomic_write(osp.join(args.save_dir, 'confusion_matrix.json'), 'w') as f:
        json.dump(dict(classes=classes + ['background'], matrix=matrix.tolist(), score_thr=args.score_thr,
                       tp_iou_thr=args.tp_iou_thr, nms_iou_thr=args.nms_iou_thr), f, indent=1)
    plot_confusion_matrix(matrix, classes, osp.join(args.save_dir, 'confusion_matrix.png'),
                          color_theme=args.color_theme)
    print(f'wrote {osp.join(args.save_dir, "confusion_matrix.png")} and confusion_matrix.json')
    if args.show:
        import matplotlib.pyplot as plt
        plot_confusion_matrix(matrix, classes, color_theme=args.color_theme)
        plt.show()
    return matrix


# ---- eval_metric ---------------------------------------------------------------------------------
def eval_metric_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Evaluate saved detections with the config\'s test metrics')
    parser.add_argument('config', help='the config the results were made with')
    parser.add_argument('pkl_results', help='results.pkl from tools/test.py --out')
    add_config_flags(parser, checkpoint=False)
    return parser


@command
def eval_metric_main(argv=None):
    from rcnn_plugins.analysis import evaluate_results, load_results
    args = eval_metric_parser().parse_args(argv)
    cfg = load_config(args.config, args)
    metrics = evaluate_results(cfg, load_results(args.pkl_results))
    print(json.dumps(metrics, indent=1))
    return metrics


# ---- get_flops -----------------------------------------------------------------------------------
def get_flops_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Count FLOPs (one FLOP = one multiply-add, mmengine.analysis) '
                                     'and parameters, next to torchvision\'s Faster R-CNN, random weights')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=[800, 1333], help='input H W (or one side)')
    add_config_flags(parser, checkpoint=False)
    return parser


@command
def get_flops_main(argv=None):
    from rcnn_plugins.analysis import build_random_detector, complexity_table, detector_flops, torchvision_flops
    args = get_flops_parser().parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise UsageError('--shape takes H W or a single side')
    shape = (args.shape[0], args.shape[-1])
    model = build_random_detector(load_config(args.config, args))
    columns = {'ours': detector_flops(model, shape), 'torchvision fasterrcnn_resnet50_fpn': torchvision_flops(shape)}
    print(f'Input shape: {shape[0]}x{shape[1]} (1 image)')
    print(complexity_table(columns))
    print('One FLOP = one multiply-add (mmengine.analysis); NMS, RoIAlign and element-wise ops are not counted.')
    return columns


# ---- pr_curve ------------------------------------------------------------------------------------
def pr_curve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Per-class precision-recall curves (COCOeval) of saved '
                                     'detections, as a PNG and its numbers (same name, .json)')
    parser.add_argument('config', help='the config the results were made with (a CocoMetric test_evaluator)')
    parser.add_argument('pkl_results', help='results.pkl from tools/test.py --out')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument('--iou-thr', type=float, default=0.5, help='IoU threshold of the curves (one of 0.5:0.95)')
    add_config_flags(parser, checkpoint=False)
    return parser


@command
def pr_curve_main(argv=None):
    from rcnn_plugins.analysis import coco_pr_curves, load_results, plot_pr_curves
    args = pr_curve_parser().parse_args(argv)
    cfg = load_config(args.config, args)
    curves = coco_pr_curves(cfg, load_results(args.pkl_results), iou_thr=args.iou_thr)
    plot_pr_curves(curves, args.out)
    numbers = osp.splitext(args.out)[0] + '.json'
    with atomic_write(numbers, 'w') as f:
        json.dump(dict(iou_thr=args.iou_thr, recall=curves['recall'].tolist(),
                       precision={k: v.tolist() for k, v in curves['precision'].items()}, ap=curves['ap']), f)
    print(f'wrote {args.out} and {numbers}')
    for name, ap in curves['ap'].items():
        print(f'{name}: AP@{args.iou_thr:g} {ap:.4f}')
    return curves


# ---- coco_error_analysis -------------------------------------------------------------------------
def coco_error_analysis_parser() -> argparse.ArgumentParser:
    from rcnn_plugins.analysis.coco_error_analysis import DEFAULT_AREAS
    parser = argparse.ArgumentParser(description='COCO Error Analysis Tool: PR curves broken down into C75, C50, '
                                     'Loc, Sim, Oth, BG and FN, as PNGs')
    parser.add_argument('result', help='result file (json format) path')
    parser.add_argument('out_dir', help='dir to save analyze result images')
    parser.add_argument('--ann', default='data/coco/annotations/instances_val2017.json', help='annotation file path')
    parser.add_argument('--types', type=str, nargs='+', default=['bbox'], help="result types (only 'bbox' here)")
    parser.add_argument('--extraplots', action='store_true', help='export extra bar/stat plots')
    parser.add_argument('--score-thr', type=float, default=None, help='drop detections scoring below this first')
    parser.add_argument('--areas', type=int, nargs='+', default=list(DEFAULT_AREAS),
                        help='area limits of small, medium and all (pixels^2)')
    return parser


@command
def coco_error_analysis_main(argv=None):
    from rcnn_plugins.analysis.coco_error_analysis import ERROR_TYPES, analyze_results
    args = coco_error_analysis_parser().parse_args(argv)
    results = analyze_results(args.result, args.ann, args.types, out_dir=args.out_dir, extraplots=args.extraplots,
                              areas=args.areas, score_thr=args.score_thr)
    for res_type, ps in results.items():
        aps = ps[..., 0, 0].mean(axis=(1, 2))  # all areas: over recall points and classes
        print(f'{res_type} (all classes, all areas): ' + ', '.join(f'{n} {v:.3f}' for n, v in zip(ERROR_TYPES, aps)))
    print(f'plots in {args.out_dir}')
    return results

"""COCO error analysis of a results json (MMDetection's tool, same name, arguments and PNGs).

    python tools/analysis_tools/coco_error_analysis.py RESULTS.json OUT_DIR --ann ANN.json \
        [--extraplots] [--score-thr 0.05] [--areas 1024 9216 10000000000]

Writes OUT_DIR/bbox/<class>-<area>.png and bbox-allclass-<area>.png: precision-recall curves
broken down into C75, C50, Loc, Sim, Oth, BG and FN (rcnn_plugins/analysis/coco_error_analysis.py
says what each means). A results json comes from ``tools/infer.py ... --coco-json`` or from
``CocoMetric(format_only=True, outfile_prefix=...)``.
"""
import argparse

from rcnn_plugins.analysis.coco_error_analysis import DEFAULT_AREAS, ERROR_TYPES, analyze_results
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='COCO Error Analysis Tool')
    parser.add_argument('result', help='result file (json format) path')
    parser.add_argument('out_dir', help='dir to save analyze result images')
    parser.add_argument('--ann', default='data/coco/annotations/instances_val2017.json', help='annotation file path')
    parser.add_argument('--types', type=str, nargs='+', default=['bbox'], help="result types (only 'bbox' here)")
    parser.add_argument('--extraplots', action='store_true', help='export extra bar/stat plots')
    parser.add_argument('--score-thr', type=float, default=None, help='drop detections scoring below this first')
    parser.add_argument('--areas', type=int, nargs='+', default=list(DEFAULT_AREAS),
                        help='area limits of small, medium and all (pixels^2)')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    results = analyze_results(args.result, args.ann, args.types, out_dir=args.out_dir, extraplots=args.extraplots,
                              areas=args.areas, score_thr=args.score_thr)
    for res_type, ps in results.items():
        aps = ps[..., 0, 0].mean(axis=(1, 2))  # all areas, over recall points and classes
        print(f'{res_type} (all classes, all areas): ' + ', '.join(f'{n} {v:.3f}' for n, v in zip(ERROR_TYPES, aps)))
    print(f'plots in {args.out_dir}')


if __name__ == '__main__':
    main()

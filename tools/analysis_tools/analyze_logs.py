"""Plot training curves or summarise iteration times from mmengine json logs (MMDetection's tool).

    python tools/analysis_tools/analyze_logs.py plot_curve WORK_DIR/<ts>/vis_data/<ts>.json \
        --keys loss_cls loss_bbox --out curves.png
    python tools/analysis_tools/analyze_logs.py plot_curve a.json b.json --keys bbox_mAP --legend a b
    python tools/analysis_tools/analyze_logs.py cal_train_time WORK_DIR/<ts>/vis_data/<ts>.json
"""
import argparse

from rcnn_plugins.analysis import cal_train_time, plot_curve
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyse json training logs')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot keys of one or more logs')
    plot.add_argument('json_logs', nargs='+', help='vis_data/<timestamp>.json (or scalars.json) files')
    plot.add_argument('--keys', nargs='+', default=['bbox_mAP'],
                      help='keys to plot: loss terms, lr, time, or metrics (bbox_mAP = coco/bbox_mAP)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--legend', nargs='+', help='a name per (log, key) line')
    plot.add_argument('--out', help='save the figure here (.png, .pdf, ...) instead of showing it')
    timing = sub.add_parser('cal_train_time', help='seconds per iteration, per epoch')
    timing.add_argument('json_logs', nargs='+')
    timing.add_argument('--include-outliers', action='store_true',
                        help='keep the first logged iteration of each epoch (data loader start-up)')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
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


if __name__ == '__main__':
    main()

"""Which MMDetection 3.x configs work here unchanged:
``python tools/misc/check_mmdet_configs.py MMDET_CONFIGS_DIR [--list configs.txt] [--keys KEYS_DIR]
[--out report.json] [--timeout 300] [--no-isolate]``.

Builds each config's model (pretrained init off), compares its state_dict keys/shapes with
``KEYS_DIR/<folder>__<config>.json`` when given, builds its pipelines and looks up its dataset and
evaluator types; prints a table and totals. The logic is :mod:`rcnn_plugins.analysis.mmdet_configs`.
Exit status 0 when every config passes every check, 1 otherwise.
"""
import argparse
import json
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config_dir', help="MMDetection's configs/ folder")
    parser.add_argument('--list', help='text file of config paths relative to config_dir, one a line '
                        '(default: every *.py outside _base_ folders)')
    parser.add_argument('--keys', help='folder of <folder>__<config>.json state_dict layouts to compare with')
    parser.add_argument('--out', help='write the rows and totals as JSON here')
    parser.add_argument('--timeout', type=float, default=300.0, help='seconds per config (default 300)')
    parser.add_argument('--no-isolate', action='store_true',
                        help='check in this process (faster; a hang or crash then stops the run)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    from rcnn_plugins.analysis.mmdet_configs import check_configs, find_configs, format_table, totals
    if not os.path.isdir(args.config_dir):
        sys.exit(f'error: config folder {args.config_dir!r} does not exist')
    if args.list:
        with open(args.list) as f:
            configs = [line.strip() for line in f if line.strip() and not line.startswith('#')]
    else:
        configs = find_configs(args.config_dir)
    try:
        from tqdm import tqdm

        def progress(items):
            return tqdm(items, desc='configs', unit='cfg', file=sys.stderr)
    except ImportError:
        progress = None
    rows = check_configs(args.config_dir, configs, args.keys, isolate=not args.no_isolate,
                         timeout=args.timeout, progress=progress)
    print(format_table(rows))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(totals=totals(rows), rows=rows), f, indent=1)
    return 0 if all(r['error'] is None for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())

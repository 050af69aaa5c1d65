"""Draw the ground truth of a config's dataset after its training pipeline (MMDetection's tool).

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir browse/ [--not-show]
        [--show-interval 2] [--split train|val|test] [--max-images N] [--cfg-options k=v ...]
"""
import argparse

from mmengine.config import DictAction

from rcnn_plugins.analysis import browse_dataset, load_config
from rcnn_plugins.analysis.errors import exit_on_user_error


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse a dataset after its pipeline')
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', help='write the drawings here')
    parser.add_argument('--not-show', action='store_true', help='do not display the drawings')
    parser.add_argument('--show-interval', type=float, default=2, help='seconds per displayed image')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='which dataloader\'s dataset and pipeline (default: train)')
    parser.add_argument('--max-images', type=int, help='stop after this many images')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.not_show and args.output_dir is None:
        raise SystemExit('browse_dataset: --not-show without --output-dir would draw nothing; give --output-dir')
    cfg = load_config(args.config, args.cfg_options)
    written = browse_dataset(cfg, args.output_dir, split=args.split, max_images=args.max_images,
                             show=not args.not_show, show_interval=args.show_interval)
    if written:
        print(f'wrote {len(written)} images to {args.output_dir}')


if __name__ == '__main__':
    main()

"""``tools/train_alternating.py``: Faster R-CNN's 4-step alternating training (the paper's section 3.2).

    python tools/train_alternating.py CONFIG [--work-dir W] [--cfg-options k=v ...] [--resume]

CONFIG is an ordinary Faster R-CNN config. Stages go to W/stage1_rpn, W/stage2_rcnn,
W/stage3_rpn, W/stage4_rcnn; the result is W/faster_rcnn_final.pth, to evaluate with
``tools/test.py CONFIG W/faster_rcnn_final.pth``. --resume continues a killed run at the stage it
was in. Per-stage schedules: ``alternating_cfg`` in the config (see
:mod:`rcnn_plugins.apis.alternating`, which holds the logic).
"""
import argparse
import os.path as osp

from .common import add_config_flags, load_config, unsafe_load
from .errors import command


def train_alternating_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Faster R-CNN 4-step alternating training')
    parser.add_argument('config', help='a Faster R-CNN config')
    parser.add_argument('--work-dir', help='output folder (default: ./work_dirs/<config name>_alternating)')
    parser.add_argument('--resume', action='store_true',
                        help='skip finished stages and resume the unfinished one from its last checkpoint')
    add_config_flags(parser)
    return parser


@command
def train_alternating_main(argv=None) -> str:
    from rcnn_plugins.apis.alternating import train_alternating
    args = train_alternating_parser().parse_args(argv)
    cfg = load_config(args.config, args)  # overrides apply before the stage configs are derived
    work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0] + '_alternating')
    with unsafe_load(args):
        path = train_alternating(cfg, osp.abspath(work_dir), resume=args.resume)
    print(f'wrote {path}')
    return path

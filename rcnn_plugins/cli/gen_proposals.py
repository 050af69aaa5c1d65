"""``tools/misc/gen_proposals.py``: write the proposals of a trained RPN for a dataset.

    python tools/misc/gen_proposals.py CONFIG CHECKPOINT --out proposals.pkl [--split train|val|test]
        [--device cpu|cuda] [--cfg-options k=v ...] [--unsafe-load]

The file is MMDetection's proposal list (one (N, 5) array per image of the split's annotation
file, original pixels, score last) to give a Fast R-CNN config as ``proposal_file``. The RPN
settings are the config's ``model.test_cfg.rpn`` (change them with --cfg-options, e.g.
``model.test_cfg.rpn.max_per_img=2000``). Logic: :func:`rcnn_plugins.apis.proposals.gen_proposals`.
"""
import argparse

from .common import add_config_flags, load_config, unsafe_load
from .errors import command

SPLITS = ('train', 'val', 'test')


def gen_proposals_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Write RPN proposals of a dataset to a proposal file')
    parser.add_argument('config', help='config of the RPN / Faster R-CNN (its dataloaders list the images)')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out', required=True, help='output .pkl (several wrapped datasets: <stem>_<k>.pkl)')
    parser.add_argument('--split', choices=SPLITS, default='train', help='which dataloader\'s images')
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available)')
    add_config_flags(parser)
    return parser


@command
def gen_proposals_main(argv=None) -> list:
    from rcnn_plugins.apis.proposals import gen_proposals
    args = gen_proposals_parser().parse_args(argv)
    cfg = load_config(args.config, args)
    with unsafe_load(args):
        paths = gen_proposals(cfg, args.checkpoint, args.out, args.split, args.device)
    for path in paths:
        print(f'wrote {path}')
    return paths

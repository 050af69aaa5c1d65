"""Write the proposals of a trained RPN (or the RPN part of a Faster R-CNN) for a dataset:

    python tools/misc/gen_proposals.py CONFIG CHECKPOINT --out proposals.pkl [--split train|val|test]
        [--device cpu|cuda] [--cfg-options k=v ...]

The file is MMDetection's proposal list (one (N, 5) array per image of the split's annotation
file, original pixels, score last) to give a Fast R-CNN config as ``proposal_file``. The RPN
settings are the config's ``model.test_cfg.rpn`` (change them with --cfg-options, e.g.
``model.test_cfg.rpn.max_per_img=2000``). Logic: :func:`rcnn_plugins.apis.proposals.gen_proposals`.
"""
import argparse

from mmengine.config import DictAction

from rcnn_plugins.apis.proposals import SPLITS, gen_proposals


def main() -> None:
    parser = argparse.ArgumentParser(description='Write RPN proposals of a dataset to a proposal file')
    parser.add_argument('config', help='config of the RPN / Faster R-CNN (its dataloaders list the images)')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out', required=True, help='output .pkl (several wrapped datasets: <stem>_<k>.pkl)')
    parser.add_argument('--split', choices=SPLITS, default='train', help='which dataloader\'s images')
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    for path in gen_proposals(args.config, args.checkpoint, args.out, args.split, args.device, args.cfg_options):
        print(f'wrote {path}')


if __name__ == '__main__':
    main()

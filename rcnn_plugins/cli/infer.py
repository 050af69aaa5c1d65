"""``rcnn-infer`` / ``tools/infer.py``: detect objects in images and videos; the work is ``DetInferencer``'s.

    python tools/infer.py INPUTS CONFIG [CHECKPOINT] --out-dir OUT [--score-thr 0.3] [--device cpu|cuda]
        [--batch-size N] [--classes A B ...] [--recursive] [--coco-json FILE [--ann-file ANN]]
        [--slice H W [--overlap 0.2] [--slice-merge nmm|nms] [--slice-match-metric ios|iou]
         [--slice-match-thr 0.5] [--slice-full-image]] [--no-save-vis] [--no-save-pred]
        [--cfg-options k=v ...] [--unsafe-load]
"""
import argparse
from typing import Optional, Sequence

from .common import add_config_flags, load_config, unsafe_load
from .errors import UsageError, command


def infer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Detect objects in images, folders, globs, list files or videos; writes OUT/vis '
                    '(drawings, annotated videos) and OUT/preds (json per image, json lines per video)')
    parser.add_argument('inputs', nargs='+',
                        help='image or video files, folders, glob patterns (quote them) or .txt files '
                             'with one path per line')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (.pth); without one the model keeps random weights')
    parser.add_argument('--out-dir', default='outputs', help='output folder (default: outputs)')
    parser.add_argument('--score-thr', '--pred-score-thr', dest='score_thr', type=float, default=0.3,
                        help='draw detections scoring above this (the json files keep all; default 0.3)')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: cuda if available)')
    parser.add_argument('--batch-size', type=int, default=1, help='images (or tiles) per forward pass')
    parser.add_argument('--classes', nargs='+', default=None,
                        help='class names, overriding those of the checkpoint / config')
    parser.add_argument('--recursive', action='store_true', help='search sub-folders of folder inputs')
    parser.add_argument('--coco-json', default=None,
                        help='also write all images\' detections as one COCO results json')
    parser.add_argument('--ann-file', default=None,
                        help='COCO annotations giving --coco-json its image ids (by file name) and category ids')
    parser.add_argument('--no-save-vis', action='store_true', help='do not write OUT/vis')
    parser.add_argument('--no-save-pred', action='store_true', help='do not write OUT/preds')
    sliced = parser.add_argument_group('sliced inference for large images')
    sliced.add_argument('--slice', nargs=2, type=int, metavar=('H', 'W'), default=None,
                        help='run on overlapping H x W tiles and merge their detections')
    sliced.add_argument('--overlap', type=float, default=0.2, help='tile overlap fraction (default 0.2)')
    sliced.add_argument('--slice-merge', choices=['nmm', 'nms'], default='nmm',
                        help='nmm: join matching boxes across tiles into their union (default); '
                             'nms: class-wise NMS')
    sliced.add_argument('--slice-match-metric', choices=['ios', 'iou'], default='ios',
                        help='overlap measure for nmm: intersection over the smaller box (default) or IoU')
    sliced.add_argument('--slice-match-thr', type=float, default=0.5,
                        help='nmm joins boxes overlapping more than this (default 0.5)')
    sliced.add_argument('--slice-nms-iou-thr', type=float, default=0.5, help='IoU threshold of nms (default 0.5)')
    sliced.add_argument('--slice-full-image', action='store_true',
                        help='also run the whole (resized) image once and merge it with the tiles')
    add_config_flags(parser)
    return parser


def _split_positionals(args: argparse.Namespace) -> None:
    """argparse gives every positional but the config to ``inputs``: pick CONFIG [CHECKPOINT] off the end.

    The config is the last argument naming a config file (.py, .json, .yaml); a checkpoint, if any,
    follows it.
    """
    values = list(args.inputs) + [args.config] + ([args.checkpoint] if args.checkpoint else [])
    config_idx = max((i for i, v in enumerate(values) if v.endswith(('.py', '.json', '.yaml', '.yml'))),
                     default=None)
    if config_idx is None or config_idx == 0:
        raise UsageError('give INPUTS... CONFIG [CHECKPOINT] (the config is a .py, .json or .yaml file)')
    args.inputs = values[:config_idx]
    args.config = values[config_idx]
    rest = values[config_idx + 1:]
    if len(rest) > 1:
        raise UsageError(f'unexpected arguments after the checkpoint: {rest[1:]}')
    args.checkpoint = rest[0] if rest else None


@command
def infer_main(argv: Optional[Sequence[str]] = None) -> dict:
    """Parse ``argv`` and run :class:`rcnn_plugins.apis.DetInferencer`; returns its output dict."""
    args = infer_parser().parse_args(argv)
    _split_positionals(args)
    from rcnn_plugins.apis import DetInferencer  # after parsing: --help stays fast
    slice_cfg = None
    if args.slice is not None:
        slice_cfg = dict(slice_hw=tuple(args.slice), overlap=args.overlap, merge=args.slice_merge,
                         match_metric=args.slice_match_metric, match_thr=args.slice_match_thr,
                         nms_iou_thr=args.slice_nms_iou_thr, full_image=args.slice_full_image)
    cfg = load_config(args.config, args)
    with unsafe_load(args):
        inferencer = DetInferencer(cfg, args.checkpoint, device=args.device, classes=args.classes)
        return inferencer(args.inputs, batch_size=args.batch_size, out_dir=args.out_dir,
                          pred_score_thr=args.score_thr, no_save_vis=args.no_save_vis,
                          no_save_pred=args.no_save_pred, recursive=args.recursive, slice_cfg=slice_cfg,
                          coco_json=args.coco_json, ann_file=args.ann_file)

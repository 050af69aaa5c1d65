"""``rcnn-infer`` / ``tools/infer.py``: detect objects in images and videos; the work is ``DetInferencer``'s.

    python tools/infer.py INPUTS CONFIG [CHECKPOINT] --out-dir OUT [--score-thr 0.3] [--device cpu|cuda]
        [--batch-size N] [--classes A B ...] [--recursive] [--coco-json FILE [--ann-file ANN]]
        [--slice H W [--overlap 0.2] [--slice-merge nmm|nms] [--slice-match-metric ios|iou]
         [--slice-match-thr 0.5] [--slice-full-image]] [--no-save-vis] [--no-save-pred]
        [--cfg-options k=v ...] [--unsafe-load] [--tta] [--exact] [--amp] [--backend B]
        [--launcher none|pytorch] [--resume]

Over several processes / GPUs: ``torchrun --nproc-per-node N tools/infer.py ... --launcher pytorch``
(or ``tools/dist_infer.sh``); see :mod:`rcnn_plugins.apis.sharded`.
"""
import argparse
import sys
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
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_model / tta_pipeline, else flip + no flip "
                             'merged by NMS')
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
    scale = parser.add_argument_group('many images: several processes, resumable runs')
    scale.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                       help='pytorch: one shard of the inputs per torchrun process; rank 0 merges --coco-json')
    scale.add_argument('--resume', action='store_true',
                       help='skip images whose OUT/preds file exists and is complete (outputs are written '
                            'atomically, so a killed run resumes where it stopped)')
    add_config_flags(parser)
    add_inference_path_args(parser)
    return parser


def add_inference_path_args(parser: argparse.ArgumentParser) -> None:
    """--exact / --amp: how the model runs (rcnn_plugins.apis.inference_path)."""
    group = parser.add_argument_group('inference path (default: the fastest path equal to the plain model to '
                                      'float rounding: BN folded + channels-last on a CPU)')
    group.add_argument('--exact', action='store_true', help='run the model as built (no BN folding, NCHW)')
    group.add_argument('--amp', action='store_true',
                       help='bf16 autocast + channels-last on a CPU with native bf16 (AVX-512 BF16 / AMX; refused '
                            'on other CPUs), fp16 on a GPU; scores change by ~1e-2')
    group.add_argument('--backend', choices=['pytorch', 'onnxruntime', 'openvino'], default='pytorch',
                       help='run the exported model on onnxruntime or OpenVINO (exported on first use, cached '
                            'next to the checkpoint; default: pytorch)')


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
    if args.launcher != 'none' or args.resume:
        return _sharded_main(args)
    slice_cfg = None
    if args.slice is not None:
        slice_cfg = dict(slice_hw=tuple(args.slice), overlap=args.overlap, merge=args.slice_merge,
                         match_metric=args.slice_match_metric, match_thr=args.slice_match_thr,
                         nms_iou_thr=args.slice_nms_iou_thr, full_image=args.slice_full_image)
    with unsafe_load(args):
        inferencer = _inferencer(args, args.device)
        outputs = inferencer(args.inputs, batch_size=args.batch_size, out_dir=args.out_dir,
                             pred_score_thr=args.score_thr, no_save_vis=args.no_save_vis,
                             no_save_pred=args.no_save_pred, recursive=args.recursive, slice_cfg=slice_cfg,
                             coco_json=args.coco_json, ann_file=args.ann_file)
    if not outputs['predictions']:
        raise UsageError(f'nothing was predicted: none of the {len(inferencer.skipped)} input(s) could be read '
                         '(see the warnings above)')
    return outputs


def _inferencer(args: argparse.Namespace, device: Optional[str]):
    """The DetInferencer the flags ask for (config overrides checked, inference path chosen)."""
    from rcnn_plugins.apis import DetInferencer  # after parsing: --help stays fast
    from rcnn_plugins.apis.inference_path import AmpUnavailableError
    from rcnn_plugins.deployment.backends import MissingExtraError
    cfg = load_config(args.config, args)
    try:
        return DetInferencer(cfg, args.checkpoint, device=device, classes=args.classes, tta=args.tta,
                             exact=args.exact, amp=args.amp, backend=args.backend)
    except (AmpUnavailableError, MissingExtraError) as err:
        raise UsageError(str(err)) from None


def _sharded_main(args: argparse.Namespace) -> dict:
    """``--launcher pytorch`` / ``--resume``: this process's shard, atomic outputs, rank 0 merges."""
    if args.slice is not None or args.no_save_pred:
        raise UsageError('--launcher / --resume need the per-image prediction files and do not slice: '
                         'drop --slice / --no-save-pred')
    from rcnn_plugins.apis.sharded import dist_env, merge_coco, predict_shard
    rank, world, local_rank = dist_env() if args.launcher == 'pytorch' else (0, 1, 0)
    device = args.device
    if world > 1:
        import torch
        import torch.distributed as dist
        if device is None:
            device = f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu'
        if device.startswith('cuda'):
            torch.cuda.set_device(torch.device(device))
    with unsafe_load(args):
        inferencer = _inferencer(args, device)
        items, predicted, complete = predict_shard(
            inferencer, args.inputs, args.out_dir, rank=rank, world=world, resume=args.resume,
            batch_size=args.batch_size, score_thr=args.score_thr, save_vis=not args.no_save_vis,
            recursive=args.recursive)
    counts = [predicted, complete]
    if world > 1:  # every rank done before rank 0 merges (and the totals decide the exit status)
        # The process group starts only now: mmengine's visualizer draws on the main process only
        # once one exists; the long timeout lets ranks whose shards took longer catch up.
        import datetime
        dist.init_process_group('nccl' if device.startswith('cuda') else 'gloo',
                                timeout=datetime.timedelta(hours=24))
        totals = torch.tensor(counts, dtype=torch.int64, device=device)  # NCCL reduces CUDA tensors only
        dist.all_reduce(totals)
        counts = totals.tolist()
        dist.destroy_process_group()
    if rank == 0:
        print(f'infer: {counts[0]} image(s) predicted now, {counts[1]} of {len(items)} have predictions in '
              f'{args.out_dir}/preds ({world} process(es))', file=sys.stderr)
        if args.coco_json and counts[1]:
            num = merge_coco(items, args.out_dir, inferencer.classes, args.coco_json, args.ann_file)
            print(f'COCO results: {num} detections written to {args.coco_json}', file=sys.stderr)
    if counts[1] == 0:
        raise UsageError('nothing was predicted: no input could be read (see the warnings above)')
    return dict(predicted=counts[0], complete=counts[1], total=len(items))

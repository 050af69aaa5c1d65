"""The checkpoint converters behind ``tools/model_converters/*.py``; the mapping is
:mod:`rcnn_plugins.models.converters.torchvision`'s.

    torchvision2rcnn.py SRC.pth DST.pth   torchvision's fasterrcnn_resnet50_fpn state dict -> a checkpoint
                                          of configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py
    rcnn2torchvision.py SRC.pth DST.pth   and back (our label = torchvision label - 1)
"""
import argparse

from .common import add_unsafe_load_flag, unsafe_load
from .errors import command


def torchvision2rcnn_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Convert torchvision\'s fasterrcnn_resnet50_fpn weights to an '
                                     'rcnn_plugins checkpoint')
    parser.add_argument('src', help='torchvision Faster R-CNN R50-FPN state dict (.pth)')
    parser.add_argument('dst', help='rcnn_plugins checkpoint to write (.pth)')
    add_unsafe_load_flag(parser)
    return parser


@command
def torchvision2rcnn_main(argv=None) -> dict:
    from rcnn_plugins.models.converters import convert_torchvision_checkpoint
    args = torchvision2rcnn_parser().parse_args(argv)
    with unsafe_load(args):
        meta = convert_torchvision_checkpoint(args.src, args.dst)
    print(f'wrote {args.dst}: {meta["num_classes"]} classes (our label = torchvision label - 1); '
          'config: configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py')
    return meta


def rcnn2torchvision_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Convert an rcnn_plugins Faster R-CNN R50-FPN checkpoint back '
                                     'to torchvision\'s state dict')
    parser.add_argument('src', help='rcnn_plugins checkpoint (.pth)')
    parser.add_argument('dst', help='torchvision state dict to write (.pth)')
    add_unsafe_load_flag(parser)
    return parser


@command
def rcnn2torchvision_main(argv=None) -> int:
    from rcnn_plugins.models.converters import convert_to_torchvision_checkpoint
    args = rcnn2torchvision_parser().parse_args(argv)
    with unsafe_load(args):
        num_classes = convert_to_torchvision_checkpoint(args.src, args.dst)
    print(f'wrote {args.dst}: load it with torchvision.models.detection.fasterrcnn_resnet50_fpn('
          f'weights=None, weights_backbone=None, num_classes={num_classes})')
    return num_classes

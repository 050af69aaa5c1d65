"""The checkpoint converters behind ``tools/model_converters/*.py``; the mapping is
:mod:`rcnn_plugins.models.converters.torchvision`'s.

    torchvision2rcnn.py SRC.pth DST.pth   torchvision's fasterrcnn_resnet50_fpn state dict -> a checkpoint
                                          of configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py
    rcnn2torchvision.py SRC.pth DST.pth   and back (our label = torchvision label - 1)
"""
import argparse

from .common import add_unsafe_load_flag, unsafe_load
from .errors import command


def _parser(description: str, src: str, dst: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=src)
    parser.add_argument('dst', help=dst)
    add_unsafe_load_flag(parser)
    return parser


def torchvision2rcnn_parser() -> argparse.ArgumentParser:
    return _parser('Convert torchvision\'s fasterrcnn_resnet50_fpn weights to an rcnn_plugins checkpoint',
                   'torchvision Faster R-CNN R50-FPN state dict (.pth)', 'rcnn_plugins checkpoint to write (.pth)')


def rcnn2torchvision_parser() -> argparse.ArgumentParser:
    return _parser('Convert an rcnn_plugins Faster R-CNN R50-FPN checkpoint back to torchvision\'s state dict',
                   'rcnn_plugins checkpoint (.pth)', 'torchvision state dict to write (.pth)')


def _convert(parser: argparse.ArgumentParser, argv, convert):
    args = parser.parse_args(argv)
    with unsafe_load(args):
        return args.dst, convert(args.src, args.dst)


@command
def torchvision2rcnn_main(argv=None) -> dict:
    from rcnn_plugins.models.converters import convert_torchvision_checkpoint
    dst, meta = _convert(torchvision2rcnn_parser(), argv, convert_torchvision_checkpoint)
    print(f'wrote {dst}: {meta["num_classes"]} classes (our label = torchvision label - 1); '
          'config: configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py')
    return meta


@command
def rcnn2torchvision_main(argv=None) -> int:
    from rcnn_plugins.models.converters import convert_to_torchvision_checkpoint
    dst, num_classes = _convert(rcnn2torchvision_parser(), argv, convert_to_torchvision_checkpoint)
    print(f'wrote {dst}: load it with torchvision.models.detection.fasterrcnn_resnet50_fpn('
          f'weights=None, weights_backbone=None, num_classes={num_classes})')
    return num_classes

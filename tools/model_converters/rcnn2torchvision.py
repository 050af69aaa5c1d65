"""Convert an rcnn_plugins Faster R-CNN R50-FPN checkpoint back to torchvision's state dict.

``python tools/model_converters/rcnn2torchvision.py SRC.pth DST.pth``

SRC: a checkpoint of ``configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py`` (or a config derived
from it), as ``tools/train.py`` writes it or ``torchvision2rcnn.py`` made it. DST is a plain state dict:
``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=K + 1).load_state_dict(torch.load(DST))``
(K = the config's num_classes; torchvision label = our label + 1, 0 is background).
"""
import argparse
import sys

from rcnn_plugins.models.converters import ConversionError, convert_to_torchvision_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='rcnn_plugins checkpoint (.pth)')
    parser.add_argument('dst', help='torchvision state dict to write (.pth)')
    args = parser.parse_args(argv)
    try:
        num_classes = convert_to_torchvision_checkpoint(args.src, args.dst)
    except (ConversionError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
    print(f'wrote {args.dst}: load it with torchvision.models.detection.fasterrcnn_resnet50_fpn('
          f'weights=None, weights_backbone=None, num_classes={num_classes})')


if __name__ == '__main__':
    main()

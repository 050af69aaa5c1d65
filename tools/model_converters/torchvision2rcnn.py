"""Convert torchvision's ``fasterrcnn_resnet50_fpn`` weights to an rcnn_plugins checkpoint.

``python tools/model_converters/torchvision2rcnn.py SRC.pth DST.pth``

SRC: the ``state_dict()`` of ``torchvision.models.detection.fasterrcnn_resnet50_fpn`` (e.g. the
released ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``, or a torchvision reference-script
checkpoint with a ``'model'`` entry). DST loads into ``configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py``
(``tools/test.py``, ``init_detector``, ``load_from`` for fine-tuning); our label = torchvision label - 1.
The mapping is :mod:`rcnn_plugins.models.converters.torchvision`.
"""
import argparse
import sys

from rcnn_plugins.models.converters import ConversionError, convert_torchvision_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='torchvision Faster R-CNN R50-FPN state dict (.pth)')
    parser.add_argument('dst', help='rcnn_plugins checkpoint to write (.pth)')
    args = parser.parse_args(argv)
    try:
        meta = convert_torchvision_checkpoint(args.src, args.dst)
    except (ConversionError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
    print(f'wrote {args.dst}: {meta["num_classes"]} classes (our label = torchvision label - 1); '
          'config: configs/faster_rcnn/faster-rcnn_r50_fpn_torchvision.py')


if __name__ == '__main__':
    main()

"""torchvision's Faster R-CNN weights to an rcnn_plugins checkpoint: ``torchvision2rcnn.py SRC.pth DST.pth``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.converters`.
"""
from rcnn_plugins.cli.converters import torchvision2rcnn_main

if __name__ == '__main__':
    torchvision2rcnn_main()

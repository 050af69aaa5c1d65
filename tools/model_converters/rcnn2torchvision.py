"""An rcnn_plugins checkpoint to torchvision's state dict: ``rcnn2torchvision.py SRC.pth DST.pth``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.converters`.
"""
from rcnn_plugins.cli.converters import rcnn2torchvision_main

if __name__ == '__main__':
    rcnn2torchvision_main()

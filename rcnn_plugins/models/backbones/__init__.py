"""Backbones: networks that turn an image batch into a tuple of multi-scale feature maps."""
from .regnet import RegNet
from .resnet import ResNet
from .vgg import VGG

__all__ = ['RegNet', 'ResNet', 'VGG']

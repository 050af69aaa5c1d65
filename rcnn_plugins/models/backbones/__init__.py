"""Backbones: networks that turn an image batch into a tuple of multi-scale feature maps."""
from .resnet import ResNet
from .vgg import VGG

__all__ = ['ResNet', 'VGG']

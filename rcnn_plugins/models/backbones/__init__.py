"""Backbones: networks that turn an image batch into a tuple of multi-scale feature maps."""
from .resnet import ResNet

__all__ = ['ResNet']

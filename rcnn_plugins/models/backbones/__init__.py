"""Backbones: networks that turn an image batch into a tuple of multi-scale feature maps."""
from .hrnet import HRNet
from .regnet import RegNet
from .resnet import ResNet
from .timm_backbone import TIMMBackbone
from .vgg import VGG

__all__ = ['HRNet', 'RegNet', 'ResNet', 'TIMMBackbone', 'VGG']

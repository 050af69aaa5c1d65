"""Backbones: networks that turn an image batch into a tuple of multi-scale feature maps."""
from .res2net import Res2Net
from .resnest import ResNeSt
from .resnet import ResNet
from .resnet_v1d import ResNetV1d
from .resnext import ResNeXt
from .vgg import VGG

__all__ = ['ResNet', 'ResNetV1d', 'ResNeXt', 'Res2Net', 'ResNeSt', 'VGG']

"""Backbones: networks that turn an image batch into a tuple of multi-scale feature maps."""
from .detectors_resnet import DetectoRS_ResNet
from .hrnet import HRNet
from .regnet import RegNet
from .res2net import Res2Net
from .resnest import ResNeSt
from .resnet import ResNet
from .resnet_v1d import ResNetV1d
from .resnext import ResNeXt
from .swin import SwinTransformer
from .timm_backbone import TIMMBackbone
from .trident_resnet import TridentResNet
from .vgg import VGG

__all__ = ['DetectoRS_ResNet', 'HRNet', 'RegNet', 'Res2Net', 'ResNeSt', 'ResNet', 'ResNetV1d', 'ResNeXt',
           'SwinTransformer', 'TIMMBackbone', 'TridentResNet', 'VGG']

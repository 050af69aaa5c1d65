"""Weight converters between rcnn_plugins checkpoints and other libraries' files."""
from .torchvision import (
                          ConversionError,
                          convert_to_torchvision_checkpoint,
                          convert_torchvision_checkpoint,
                          rcnn_to_torchvision,
                          torchvision_to_rcnn,
)

__all__ = ['ConversionError', 'convert_torchvision_checkpoint', 'convert_to_torchvision_checkpoint',
           'rcnn_to_torchvision', 'torchvision_to_rcnn']

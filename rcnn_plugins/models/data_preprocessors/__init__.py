"""Data preprocessors: collate, normalise and pad a batch before the network sees it."""
from .batch_fixed_size_pad import BatchFixedSizePad
from .batch_resize import BatchResize
from .data_preprocessor import DetDataPreprocessor

__all__ = ['DetDataPreprocessor', 'BatchFixedSizePad', 'BatchResize']

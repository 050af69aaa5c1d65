"""Data preprocessors: collate, normalise and pad a batch before the network sees it."""
from .data_preprocessor import DetDataPreprocessor

__all__ = ['DetDataPreprocessor']

"""Data transforms (registered in ``TRANSFORMS``, scope rcnn_plugins).

``LoadProposals`` loads a dataset's precomputed proposals (MMDetection's transform).
``LoadImageFromFile``, ``LoadAnnotations``, ``Resize`` and ``RandomFlip`` extend mmcv's
transforms of the same names; mmcv's other transforms (``Pad``, ``RandomResize``, ...) are
reached through the parent registry.
"""
from .flip import RandomFlip
from .formatting import PackDetInputs
from .load_proposals import LoadProposals
from .loading import LoadAnnotations, LoadImageFromFile, LoadImageFromNDArray
from .resize import Resize

__all__ = ['LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations', 'LoadProposals', 'Resize', 'RandomFlip', 'PackDetInputs']

"""Data transforms (registered in ``TRANSFORMS``, scope rcnn_plugins).

``LoadProposals`` loads a dataset's precomputed proposals (MMDetection's transform);
``ProposalBroadcaster`` is accepted for MMDetection's Fast R-CNN configs.
``LoadImageFromFile``, ``LoadAnnotations``, ``Resize`` and ``RandomFlip`` extend mmcv's
transforms of the same names; mmcv's other transforms (``Pad``, ``RandomResize``, ...) are
reached through the parent registry.
"""
from .flip import RandomFlip
from .formatting import PackDetInputs
from .load_proposals import LoadProposals
from .loading import LoadAnnotations, LoadImageFromFile, LoadImageFromNDArray
from .proposal_broadcaster import ProposalBroadcaster
from .resize import Resize

__all__ = ['LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations', 'LoadProposals', 'ProposalBroadcaster',
           'Resize', 'RandomFlip', 'PackDetInputs']

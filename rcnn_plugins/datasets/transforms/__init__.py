"""Data transforms (registered in ``TRANSFORMS``, scope rcnn_plugins).

``LoadProposals`` loads a dataset's precomputed proposals (MMDetection's transform);
``ProposalBroadcaster`` is accepted for MMDetection's Fast R-CNN configs. MMDetection's
augmentations ``RandomCrop``, ``MinIoURandomCrop``, ``Expand``, ``PhotoMetricDistortion`` and
``FilterAnnotations`` keep boxes, labels and ignore flags aligned (``instance_ops``);
``RandomChoiceResize`` / ``RandomResize`` / ``TestTimeAug`` are mmcv's, resolving their inner
transforms here.
``LoadImageFromFile``, ``LoadAnnotations``, ``Resize`` and ``RandomFlip`` extend mmcv's
transforms of the same names; mmcv's other transforms (``Pad``, ``RandomResize``, ...) are
reached through the parent registry.
"""
from .expand import Expand
from .filter_annotations import FilterAnnotations
from .flip import RandomFlip
from .formatting import PackDetInputs
from .load_proposals import LoadProposals
from .loading import LoadAnnotations, LoadImageFromFile, LoadImageFromNDArray
from .min_iou_random_crop import MinIoURandomCrop
from .photo_metric_distortion import PhotoMetricDistortion
from .proposal_broadcaster import ProposalBroadcaster
from .random_choice_resize import RandomChoiceResize
from .random_crop import RandomCrop
from .random_resize import RandomResize
from .resize import Resize
from .test_time_aug import TestTimeAug

__all__ = ['LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations', 'LoadProposals', 'ProposalBroadcaster',
           'Resize', 'RandomFlip', 'PackDetInputs', 'RandomCrop', 'MinIoURandomCrop', 'Expand', 'PhotoMetricDistortion',
           'FilterAnnotations', 'RandomChoiceResize', 'RandomResize', 'TestTimeAug']

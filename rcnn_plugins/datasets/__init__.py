"""Datasets, transforms and batch samplers; importing this package registers all of them.

``CocoDataset``, ``XMLDataset`` and ``VOCDataset`` (``DATASETS``; COCO-format variants:
``CityscapesDataset``, ``Objects365V1Dataset`` / ``Objects365V2Dataset``, ``V3DetDataset``) load annotations into
MMDetection 3.x data_infos and validate them once at load time (see :mod:`.validation`);
mmengine's ``ConcatDataset`` / ``RepeatDataset`` wrap them unchanged; ``ClassBalancedDataset`` is
mmengine's, registered here so that it builds our datasets and keeps per-sample seeds.
"""
from . import samplers, transforms
from .base_det_dataset import BaseDetDataset
from .cityscapes import CityscapesDataset
from .class_balanced_dataset import ClassBalancedDataset
from .coco import COCO_CLASSES, CocoDataset
from .crowdhuman import CrowdHumanDataset
from .dsdl import DSDLDetDataset
from .errors import DatasetError, DatasetWarning
from .objects365_v1 import Objects365V1Dataset
from .objects365_v2 import Objects365V2Dataset
from .openimages import OpenImagesDataset
from .openimages_challenge import OpenImagesChallengeDataset
from .samplers import AspectRatioBatchSampler, ClassAwareSampler
from .v3det import V3DetDataset
from .voc import VOC_CLASSES, VOCDataset
from .xml_style import XMLDataset

__all__ = ['BaseDetDataset', 'CocoDataset', 'XMLDataset', 'VOCDataset', 'COCO_CLASSES', 'VOC_CLASSES',
           'DatasetError', 'DatasetWarning', 'AspectRatioBatchSampler', 'ClassAwareSampler', 'ClassBalancedDataset',
           'CityscapesDataset', 'CrowdHumanDataset',
           'DSDLDetDataset', 'Objects365V1Dataset', 'Objects365V2Dataset', 'OpenImagesDataset',
           'OpenImagesChallengeDataset',
           'V3DetDataset', 'samplers', 'transforms']

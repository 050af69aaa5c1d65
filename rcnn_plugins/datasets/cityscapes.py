"""``CityscapesDataset``: Cityscapes instances converted to COCO json (MMDetection's dataset;
``tools/dataset_converters/cityscapes.py`` of MMDetection writes the json).

A ``CocoDataset`` with the 8 instance classes and MMDetection's palette. One difference of
filtering: with ``filter_empty_gt`` an image whose instances are all crowd (ignored) is dropped
too, as MMDetection's Cityscapes dataset does (plain COCO keeps it).
"""
from ..registry import DATASETS
from .coco import CocoDataset


@DATASETS.register_module()
class CityscapesDataset(CocoDataset):
    """Arguments as :class:`CocoDataset`."""

    METAINFO = dict(classes=('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle'),
                    palette=[(220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
                             (0, 0, 230), (119, 11, 32)])

    def _has_gt(self, data_info: dict) -> bool:
        return any(not inst['ignore_flag'] for inst in data_info['instances'])

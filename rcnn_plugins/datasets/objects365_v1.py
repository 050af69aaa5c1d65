"""``Objects365V1Dataset``: Objects365 v1 in COCO json format (MMDetection's dataset).

A ``CocoDataset`` with the 365 v1 class names. MMDetection sorts the file's categories by id
because the v1 train and val files list them in different orders; here labels are matched by
name (``CocoDataset``), so the order of the file does not matter.
"""
from ..registry import DATASETS
from .coco import CocoDataset
from .objects365_classes import OBJECTS365_V1_CLASSES
from .palette import default_palette


@DATASETS.register_module()
class Objects365V1Dataset(CocoDataset):
    """Arguments as :class:`CocoDataset` (``ann_file``, ``data_prefix=dict(img='train/')``, ...)."""

    METAINFO = dict(classes=OBJECTS365_V1_CLASSES, palette=default_palette(len(OBJECTS365_V1_CLASSES)))

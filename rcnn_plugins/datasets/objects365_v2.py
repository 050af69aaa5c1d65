"""``Objects365V2Dataset``: Objects365 v2 in COCO json format (MMDetection's dataset).

A ``CocoDataset`` with the 365 v2 class names and v2's file layout: the json's ``file_name``
(``images/v1/patch8/objects365_v1_00420917.jpg``) is read as ``patch8/objects365_v1_00420917.jpg``
under the image prefix, and the three images the json lists but the release lacks are left out,
as MMDetection does.
"""
import os.path as osp
from typing import Optional

from ..registry import DATASETS
from .coco import CocoDataset
from .objects365_classes import OBJECTS365_V2_CLASSES
from .palette import default_palette

# Listed in the v2 annotations, absent from the image folders.
MISSING_V2_IMAGES = (osp.join('patch16', 'objects365_v2_00908726.jpg'),
                     osp.join('patch6', 'objects365_v1_00320532.jpg'),
                     osp.join('patch6', 'objects365_v1_00320534.jpg'))


@DATASETS.register_module()
class Objects365V2Dataset(CocoDataset):
    """Arguments as :class:`CocoDataset` (``ann_file``, ``data_prefix=dict(img='train/')``, ...)."""

    METAINFO = dict(classes=OBJECTS365_V2_CLASSES, palette=default_palette(len(OBJECTS365_V2_CLASSES)))

    def _image_file(self, img_info: dict) -> Optional[str]:
        folder, name = osp.split(img_info['file_name'])
        file_name = osp.join(osp.basename(folder), name)  # 'patchX/name.jpg'
        return None if file_name in MISSING_V2_IMAGES else file_name

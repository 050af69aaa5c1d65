"""``V3DetDataset``: V3Det (13204 classes) in COCO json format (MMDetection's dataset).

The class names come from ``label_file`` (one name per line, relative to ``data_root``), as
MMDetection's; ``metainfo=dict(classes=...)`` overrides them.
"""
import os.path as osp
from typing import Optional

from ..registry import DATASETS
from .coco import CocoDataset
from .errors import DatasetError


@DATASETS.register_module()
class V3DetDataset(CocoDataset):
    """Args: ``label_file`` (class names, one per line); the rest as :class:`CocoDataset`."""

    METAINFO = dict(classes=None, palette=None)

    def __init__(self, *args, metainfo: Optional[dict] = None, data_root: str = '',
                 label_file: str = 'annotations/category_name_13204_v3det_2023_v1.txt', **kwargs) -> None:
        if metainfo is None:
            path = osp.join(data_root, label_file)
            if not osp.isfile(path):
                raise DatasetError(f'V3DetDataset: class list {path} not found; set label_file (relative to '
                                   'data_root) to the category_name_*.txt of the release, or '
                                   'metainfo=dict(classes=...)')
            with open(path, encoding='utf-8') as f:
                names = tuple(line.strip() for line in f if line.strip())
            if not names:
                raise DatasetError(f'V3DetDataset: class list {path} is empty')
            metainfo = dict(classes=names)
        super().__init__(*args, data_root=data_root, metainfo=metainfo, **kwargs)

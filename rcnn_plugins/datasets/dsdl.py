"""``DSDLDetDataset``: MMDetection's reader of OpenDataLab's DSDL dataset descriptions, registered so
that the ``configs/dsdl`` files resolve their dataset type, but not supported: constructing it
raises one error naming the missing package and the fix.

Why not supported: reading DSDL needs the ``dsdl`` package, unmaintained since 2023 and pulling
linters (pylint, isort) in as run-time dependencies. Every dataset MMDetection's DSDL configs use
(COCO, VOC, Objects365, Open Images) has a native dataset here, built from the original files.
"""
from ..registry import DATASETS
from .errors import DatasetError


@DATASETS.register_module()
class DSDLDetDataset:
    """Placeholder for MMDetection's ``DSDLDetDataset``; any construction raises :class:`DatasetError`.

    Args:
        specific_key_path, pre_transform, **kwargs: MMDetection's arguments, accepted only to name them
            in the error.
    """

    def __init__(self, specific_key_path: dict = None, pre_transform: dict = None, **kwargs) -> None:
        where = kwargs.get('ann_file') or kwargs.get('data_root') or '<no ann_file>'
        raise DatasetError(
            f'DSDLDetDataset ({where}): DSDL datasets need the `dsdl` package, which rcnn_plugins does not '
            'support. Fix: use the native dataset of the same data with its original annotation files '
            "(type='CocoDataset', 'VOCDataset', 'Objects365V2Dataset' or 'OpenImagesDataset'; "
            'see docs/MMDET_DIFFERENCES.md).')

"""``VOCDataset``: Pascal VOC 2007 / 2012 (an ``XMLDataset`` with the 20 VOC classes).

``dataset_meta['dataset_type']`` is ``'VOC2007'`` or ``'VOC2012'`` when that name appears in the
dataset's ``sub_data_root`` (as MMDetection 3.x), else in ``data_root`` or ``ann_file``, otherwise
None. ``VOCMetric`` uses it to choose the 11-point AP of VOC2007 or the area AP of VOC2012.
"""
from ..registry import DATASETS
from .palette import default_palette
from .xml_style import XMLDataset

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


@DATASETS.register_module()
class VOCDataset(XMLDataset):
    """Pascal VOC detection dataset; arguments as :class:`XMLDataset`."""

    METAINFO = dict(classes=VOC_CLASSES, palette=default_palette(len(VOC_CLASSES)), dataset_type=None)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._metainfo['dataset_type'] = None
        for path in (self.sub_data_root, self.data_root or '', self.ann_file or ''):
            for year in ('VOC2007', 'VOC2012'):
                if year in path:
                    self._metainfo['dataset_type'] = year
                    return

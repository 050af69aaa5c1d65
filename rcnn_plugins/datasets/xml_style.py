"""``XMLDataset``: Pascal-VOC-style XML annotations, one file per image (MMDetection 3.x layout).

Layout, relative to ``data_root`` + ``data_prefix['sub_data_root']``::

    ImageSets/Main/<split>.txt   ann_file: one image id per line
    <ann_subdir>/<id>.xml        default 'Annotations'
    <img_subdir>/<id>.jpg        default 'JPEGImages'; if that file does not exist and the XML's
                                 <filename> names a file that does, that file is used

Each XML gives ``size`` (width, height; read from the image when absent) and ``object`` records
with ``name``, ``bndbox`` (xmin, ymin, xmax, ymax) and ``difficult``. As MMDetection 3.x: the
1-based VOC coordinates become ``int(float(v)) - 1`` for all four values, ``difficult`` and
boxes smaller than ``filter_cfg['bbox_min_size']`` (training only) get ``ignore_flag=1``, and
objects whose name is not in ``metainfo['classes']`` are skipped. Problems are reported as
described in :mod:`.validation`.
"""
import os.path as osp
import xml.etree.ElementTree as ET
from collections import Counter
from typing import List, Optional

import mmcv
from mmengine import fileio

from ..registry import DATASETS
from .base_det_dataset import BaseDetDataset
from .errors import DatasetError
from .validation import BoxSanitizer, list_some, warn

_COORDS = ('xmin', 'ymin', 'xmax', 'ymax')


@DATASETS.register_module()
class XMLDataset(BaseDetDataset):
    """Dataset of VOC-style XML annotations; classes come from ``metainfo=dict(classes=...)``.

    Args:
        img_subdir: folder of the images inside ``sub_data_root``.
        ann_subdir: folder of the XML files inside ``sub_data_root``.
        data_prefix: ``dict(sub_data_root='VOC2007/')``, joined to ``data_root``.
        **kwargs: see :class:`BaseDetDataset`. ``filter_cfg`` may also hold ``bbox_min_size``.

    Attributes (set when the annotations are loaded):
        cat2label: class name -> label.
    """

    def __init__(self, *args, img_subdir: str = 'JPEGImages', ann_subdir: str = 'Annotations',
                 data_prefix: dict = dict(sub_data_root=''), **kwargs) -> None:
        self.img_subdir = img_subdir
        self.ann_subdir = ann_subdir
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    @property
    def sub_data_root(self) -> str:
        """Folder that holds ``ann_subdir`` and ``img_subdir`` (already joined to data_root)."""
        return self.data_prefix.get('sub_data_root', '')

    @property
    def bbox_min_size(self) -> Optional[float]:
        """Training boxes narrower or lower than this are marked ignored (MMDetection's option)."""
        if self.test_mode or not self.filter_cfg:
            return None
        return self.filter_cfg.get('bbox_min_size')

    def load_data_list(self) -> List[dict]:
        """Read the id list and every XML; report all bad files at once."""
        classes = self.metainfo.get('classes')
        if not classes:
            raise DatasetError(f'{type(self).__name__} needs the class names: metainfo=dict(classes=(...)).')
        self.cat2label = {name: label for label, name in enumerate(classes)}
        try:
            img_ids = [line.strip() for line in fileio.list_from_file(self.ann_file, backend_args=self.backend_args)]
        except FileNotFoundError as err:
            raise DatasetError(f'image id list {self.ann_file} does not exist. Check data_root and ann_file.') from err
        img_ids = [img_id for img_id in img_ids if img_id]

        ann_dir = osp.join(self.sub_data_root, self.ann_subdir)
        self._sanitizer = BoxSanitizer(ann_dir)
        self._problems: List[str] = []
        self._name_counts: Counter = Counter()
        data_list = []
        for img_id in img_ids:
            xml_path = osp.join(ann_dir, f'{img_id}.xml')
            data_info = self._parse_xml(img_id, xml_path)
            if data_info is not None:
                data_list.append(data_info)
        if self._problems:
            raise DatasetError(f'{len(self._problems)} problems in the XML annotations listed by {self.ann_file}: '
                               f'{list_some(self._problems)}.')
        self._sanitizer.report()
        unused = [name for name in classes if self._name_counts[name] == 0]
        if unused and img_ids:
            others = sorted(name for name in self._name_counts if name not in self.cat2label)
            warn(f'{ann_dir}: {len(unused)} of the {len(classes)} classes have no object in the {len(img_ids)} XML '
                 f'files of {self.ann_file}: {list_some(unused)}'
                 + (f'; names found there that are not classes: {others}.' if others else '.'))
        del self._sanitizer, self._problems, self._name_counts  # load-time state only
        return data_list

    def _parse_xml(self, img_id: str, xml_path: str) -> Optional[dict]:
        """One XML file -> data_info, or None with the reason appended to ``self._problems``."""
        try:
            with fileio.get_local_path(xml_path, backend_args=self.backend_args) as local_path:
                root = ET.parse(local_path).getroot()
        except FileNotFoundError:
            self._problems.append(f'{xml_path}: file does not exist')
            return None
        except ET.ParseError as err:  # its message names the line and column
            self._problems.append(f'{xml_path}: not valid XML: {err}')
            return None

        img_path = self._image_path(img_id, root)
        width, height = self._image_size(root, img_path, xml_path)
        if width is None:
            return None
        instances = []
        for k, obj in enumerate(root.findall('object')):
            instance = self._parse_object(obj, f'{xml_path} object #{k}', width, height)
            if instance is not None:
                instances.append(instance)
        return dict(img_id=img_id, img_path=img_path, xml_path=xml_path, height=height, width=width,
                    instances=instances)

    def _image_path(self, img_id: str, root: ET.Element) -> str:
        img_dir = osp.join(self.sub_data_root, self.img_subdir)
        img_path = osp.join(img_dir, f'{img_id}.jpg')
        file_name = (root.findtext('filename') or '').strip()
        if file_name and not fileio.exists(img_path, backend_args=self.backend_args):
            candidate = osp.join(img_dir, file_name)
            if fileio.exists(candidate, backend_args=self.backend_args):
                return candidate
        return img_path

    def _image_size(self, root: ET.Element, img_path: str, xml_path: str):
        """(width, height) from <size>, else from the image; (None, None) on failure."""
        try:
            width, height = int(float(root.findtext('size/width'))), int(float(root.findtext('size/height')))
            if width > 0 and height > 0:
                return width, height
        except (TypeError, ValueError):
            pass  # no usable <size>: read the image as MMDetection does
        try:
            img = mmcv.imfrombytes(fileio.get(img_path, backend_args=self.backend_args), backend='cv2')
        except FileNotFoundError:
            img = None
        if img is None:
            self._problems.append(f'{xml_path}: no <size> and image {img_path} cannot be read to get it')
            return None, None
        return img.shape[1], img.shape[0]

    def _parse_object(self, obj: ET.Element, ref: str, width: int, height: int) -> Optional[dict]:
        name = (obj.findtext('name') or '').strip()
        if not name:
            self._problems.append(f'{ref}: no <name>')
            return None
        self._name_counts[name] += 1
        if name not in self.cat2label:
            return None
        try:
            difficult = int(obj.findtext('difficult') or 0)
            # VOC pixels are numbered from 1; MMDetection 3.x subtracts 1 from all four values.
            bbox = [int(float(obj.findtext(f'bndbox/{key}'))) - 1 for key in _COORDS]
        except (TypeError, ValueError, OverflowError):  # missing, not a number, NaN, inf
            self._problems.append(f'{ref}: <bndbox> needs finite numeric {", ".join(_COORDS)} '
                                  f'and <difficult> must be 0 or 1')
            return None
        bbox = self._sanitizer(bbox, width, height, ref)
        if bbox is None:
            return None
        ignore = bool(difficult)
        if self.bbox_min_size is not None:
            ignore |= bbox[2] - bbox[0] < self.bbox_min_size or bbox[3] - bbox[1] < self.bbox_min_size
        return dict(bbox=[float(v) for v in bbox], bbox_label=self.cat2label[name], ignore_flag=int(ignore))

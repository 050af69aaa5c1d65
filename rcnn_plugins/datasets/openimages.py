"""``OpenImagesDataset``: Open Images (v6 boxes, csv) as MMDetection loads it.

Files (paths relative to ``data_root``):

- ``ann_file``: ``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,
  IsGroupOf,IsDepiction,IsInside`` with a header line, coordinates normalised to [0, 1]; rows of an
  image are contiguous;
- ``label_file``: ``MID,name`` per line: the class list, label ``i`` = line ``i``;
- ``hierarchy_file``: the class hierarchy json (``LabelName`` / ``Subcategory``), turned into
  ``metainfo['RELATION_MATRIX']`` (K, K): ``[c, p] = 1`` when ``p`` is ``c`` or an ancestor of it;
- ``meta_file``: image sizes, MMDetection's pickle (a list of ``dict(filename, ori_shape)`` in
  annotation order, read with a restricted unpickler) or None: read from the image headers;
- ``image_level_ann_file`` (optional): ``ImageID,Source,LabelName,Confidence`` human-verified
  image labels, kept per image as ``image_level_labels`` / ``confidences`` for the metric.

Instances keep ``is_group_of`` (a box around several objects), ``is_occluded``, ``is_truncated``,
``is_depiction``, ``is_inside``. A malformed row is a ``DatasetError`` naming the file and line.
"""
import csv
import json
import os.path as osp
import pickle
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

from ..fileio.safe_pickle import restricted_load
from ..registry import DATASETS
from .base_det_dataset import BaseDetDataset
from .errors import DatasetError

_FLAGS = ('is_occluded', 'is_truncated', 'is_group_of', 'is_depiction', 'is_inside')


@DATASETS.register_module()
class OpenImagesDataset(BaseDetDataset):
    """Args: ``label_file``, ``meta_file``, ``hierarchy_file``, ``image_level_ann_file`` (see the
    module docstring); the rest as :class:`BaseDetDataset` (``ann_file``, ``data_prefix``, ...)."""

    METAINFO = dict(dataset_type='oid_v6')

    def __init__(self, label_file: str, meta_file: Optional[str], hierarchy_file: str,
                 image_level_ann_file: Optional[str] = None, **kwargs) -> None:
        root = kwargs.get('data_root') or ''

        def full(path):
            return path if path is None or osp.isabs(path) else osp.join(root, path)
        self.label_file, self.meta_file = full(label_file), full(meta_file)
        self.hierarchy_file, self.image_level_ann_file = full(hierarchy_file), full(image_level_ann_file)
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ files
    def _rows(self, path: str, skip_header: bool):
        if not osp.isfile(path):
            raise DatasetError(f'{path}: file not found (paths are relative to data_root)')
        with open(path, newline='', encoding='utf-8') as f:
            for lineno, row in enumerate(csv.reader(f), 1):
                if skip_header and lineno == 1:
                    continue
                if row:
                    yield lineno, row

    def _parse_label_file(self):
        names, mapping = [], {}
        for lineno, row in self._rows(self.label_file, skip_header=False):
            if len(row) < 2:
                raise DatasetError(f'{self.label_file}:{lineno}: expected "MID,name", got {row!r}')
            mapping[row[0]] = len(names)
            names.append(row[1])
        return tuple(names), mapping

    def _label(self, mid: str, where: str) -> int:
        if mid not in self.label_id_mapping:
            raise DatasetError(f'{where}: label {mid!r} is not in {self.label_file}')
        return self.label_id_mapping[mid]

    def _relation_matrix(self) -> np.ndarray:
        try:
            with open(self.hierarchy_file) as f:
                tree = json.load(f)
        except (OSError, ValueError) as err:
            raise DatasetError(f'{self.hierarchy_file}: cannot read the class hierarchy json ({err})') from None
        num = len(self.label_id_mapping)
        matrix = np.eye(num, num)
        stack = [(tree, [])]
        while stack:  # depth-first over the tree: each class gets all its ancestors
            node, ancestors = stack.pop()
            for child in node.get('Subcategory', []):
                if 'LabelName' not in child:
                    continue
                idx = self._label(child['LabelName'], self.hierarchy_file)
                matrix[idx, ancestors] = 1
                stack.append((child, [idx] + ancestors))
        return matrix

    def _image_sizes(self, data_list: List[dict]) -> None:
        if self.meta_file is not None:
            self._sizes_from_meta(data_list, ', or meta_file=None')
            return
        for info in data_list:
            try:
                with Image.open(info['img_path']) as img:
                    info['width'], info['height'] = img.size
            except OSError as err:
                raise DatasetError(f'image {info["img_path"]} cannot be read ({err}); check data_prefix') from None

    def _meta_is_image(self, filename: str, img_id: str) -> bool:
        """Whether the meta file's ``filename`` is the image ``img_id`` (metas come in annotation order)."""
        return osp.basename(filename) == f'{img_id}.jpg'

    def _sizes_from_meta(self, data_list: List[dict], hint: str = '') -> None:
        """``height`` / ``width`` of every image from ``meta_file`` (MMDetection's pickle, read restricted)."""
        try:
            with open(self.meta_file, 'rb') as f:
                metas = restricted_load(f, {})
        except (OSError, pickle.UnpicklingError) as err:
            raise DatasetError(f'{self.meta_file}: cannot read the image metas ({err}); a pickle of '
                               f'dict(filename, ori_shape) per image{hint}') from None
        if len(metas) != len(data_list):
            raise DatasetError(f'{self.meta_file}: {len(metas)} image metas for {len(data_list)} images of '
                               f'{self.ann_file}')
        for info, meta in zip(data_list, metas):
            if not self._meta_is_image(meta['filename'], info['img_id']):
                raise DatasetError(f'{self.meta_file}: meta of {meta["filename"]} where the annotations have '
                                   f'image {info["img_id"]} (same order needed)')
            info['height'], info['width'] = meta['ori_shape'][:2]

    # ------------------------------------------------------------------ load
    def load_data_list(self) -> List[dict]:
        names, self.label_id_mapping = self._parse_label_file()
        self._metainfo['classes'] = names
        self._metainfo['RELATION_MATRIX'] = self._relation_matrix()
        prefix = self.data_prefix.get('img', '')
        by_image: Dict[str, List[dict]] = {}
        for lineno, row in self._rows(self.ann_file, skip_header=True):
            where = f'{self.ann_file}:{lineno}'
            if len(row) < 13:
                raise DatasetError(f'{where}: expected 13 columns (ImageID,Source,LabelName,Confidence,XMin,XMax,'
                                   f'YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside), got {len(row)}')
            try:
                x1, x2, y1, y2 = (float(v) for v in row[4:8])
                flags = [int(v) == 1 for v in row[8:13]]
            except ValueError as err:
                raise DatasetError(f'{where}: {err}') from None
            by_image.setdefault(row[0], []).append(dict(bbox=[x1, y1, x2, y2], bbox_label=self._label(row[2], where),
                                                        ignore_flag=0, **dict(zip(_FLAGS, flags))))
        data_list = [dict(img_id=img_id, img_path=osp.join(prefix, f'{img_id}.jpg'), instances=instances)
                     for img_id, instances in by_image.items()]
        self._image_sizes(data_list)
        for info in data_list:
            scale = [info['width'], info['height'], info['width'], info['height']]
            for inst in info['instances']:
                inst['bbox'] = [v * s for v, s in zip(inst['bbox'], scale)]
        if self.image_level_ann_file is not None:
            labels = defaultdict(list)
            for lineno, row in self._rows(self.image_level_ann_file, skip_header=True):
                where = f'{self.image_level_ann_file}:{lineno}'
                labels[row[0]].append((self._label(row[2], where), float(row[3])))
            for info in data_list:
                pairs = labels.get(info['img_id'], [])
                info['image_level_labels'] = np.array([p[0] for p in pairs], dtype=np.int64)
                info['confidences'] = np.array([p[1] for p in pairs], dtype=np.float32)
        return data_list

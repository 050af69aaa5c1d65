"""``OpenImagesChallengeDataset``: the Open Images Challenge 2019 detection files as MMDetection loads them.

Files (paths relative to ``data_root``):

- ``ann_file`` (``.txt``): per image, a block of lines: the image file name (relative to
  ``data_prefix['img']``), one line MMDetection skips (the image size), the box count ``n``, then
  ``n`` lines ``label x1 y1 x2 y2 is_group_of`` with ``label`` 1-based and coordinates normalised
  to [0, 1];
- ``label_file``: ``MID,name,id`` per line (no header): label ``id - 1``; ``classes`` are the names
  in ``id`` order;
- ``hierarchy_file``: a ``.npy`` array (K + 1, K + 1) whose row/column 0 is the root;
  ``metainfo['RELATION_MATRIX']`` is the array without them. Read with ``allow_pickle=False``:
  the file is numbers only, and a pickle could run code;
- ``meta_file`` (required): MMDetection's pickle, a list of ``dict(filename, ori_shape)`` in
  annotation order, read with a restricted unpickler;
- ``image_level_ann_file`` (optional): ``ImageID,LabelName,Confidence`` with a header line, kept per
  image as ``image_level_labels`` / ``confidences`` for the metric.

Instances carry ``is_group_of`` (the key ``OpenImagesMetric`` reads). A malformed block or row is a
``DatasetError`` naming the file and line.
"""
import os.path as osp
from collections import defaultdict
from typing import List

import numpy as np

from ..registry import DATASETS
from .errors import DatasetError
from .openimages import OpenImagesDataset


@DATASETS.register_module()
class OpenImagesChallengeDataset(OpenImagesDataset):
    """Args: ``ann_file`` (the challenge ``.txt``), ``label_file``, ``meta_file``, ``hierarchy_file``,
    ``image_level_ann_file`` (see the module docstring); the rest as :class:`BaseDetDataset`."""

    METAINFO = dict(dataset_type='oid_challenge')

    def __init__(self, ann_file: str, **kwargs) -> None:
        if not ann_file.endswith('txt'):
            raise DatasetError(f'OpenImagesChallengeDataset: ann_file={ann_file!r}: the challenge box annotations '
                               'are a .txt file (for the v6 csv files use OpenImagesDataset)')
        if kwargs.get('meta_file') is None:
            raise DatasetError('OpenImagesChallengeDataset: meta_file is required (the pickle of '
                               'dict(filename, ori_shape) per image that gives the image sizes)')
        super().__init__(ann_file=ann_file, **kwargs)

    # ------------------------------------------------------------------ files
    def _parse_label_file(self):
        rows = []
        for lineno, row in self._rows(self.label_file, skip_header=False):
            try:
                rows.append((int(row[2]), row[0], row[1]))
            except (IndexError, ValueError):
                raise DatasetError(f'{self.label_file}:{lineno}: expected "MID,name,id" (id an integer from 1), '
                                   f'got {row!r}') from None
        rows.sort()
        return tuple(name for _, _, name in rows), {mid: idx - 1 for idx, mid, _ in rows}

    def _relation_matrix(self) -> np.ndarray:
        try:
            with open(self.hierarchy_file, 'rb') as f:
                tree = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DatasetError(f'{self.hierarchy_file}: cannot read the class tree array ({err}); a numeric .npy '
                               'array (K + 1, K + 1), row and column 0 the root') from None
        num = len(self.label_id_mapping)
        if tree.shape != (num + 1, num + 1):
            raise DatasetError(f'{self.hierarchy_file}: class tree of shape {tree.shape}, expected '
                               f'({num + 1}, {num + 1}) for the {num} classes of {self.label_file}')
        return tree[1:, 1:]

    def _read_boxes(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise DatasetError(f'{self.ann_file}: file not found (paths are relative to data_root)')
        with open(self.ann_file, encoding='utf-8') as f:
            lines = [line.rstrip('\n') for line in f]
        while lines and not lines[-1].strip():
            lines.pop()
        prefix = self.data_prefix.get('img', '')
        num_classes = len(self.label_id_mapping)
        data_list, i = [], 0
        while i < len(lines):
            filename = lines[i].strip()
            try:
                count = int(lines[i + 2])
            except (IndexError, ValueError):
                raise DatasetError(f'{self.ann_file}:{i + 3}: expected the box count of image {filename!r} '
                                   '(blocks: file name, size line, count, boxes)') from None
            instances = []
            for j in range(i + 3, i + 3 + count):
                parts = lines[j].split() if j < len(lines) else []
                try:
                    label, x1, y1, x2, y2, group = (int(parts[0]), *map(float, parts[1:5]), int(parts[5]))
                except (IndexError, ValueError):
                    raise DatasetError(f'{self.ann_file}:{j + 1}: expected "label x1 y1 x2 y2 is_group_of" '
                                       f'(box {j - i - 2} of {count} of image {filename!r})') from None
                if not 1 <= label <= num_classes:
                    raise DatasetError(f'{self.ann_file}:{j + 1}: label {label} outside 1..{num_classes} '
                                       f'(the ids of {self.label_file})')
                instances.append(dict(bbox=[x1, y1, x2, y2], bbox_label=label - 1, ignore_flag=0,
                                      is_group_of=group == 1))
            data_list.append(dict(img_path=osp.join(prefix, filename), instances=instances,
                                  img_id=osp.splitext(osp.basename(filename))[0]))
            i += 3 + count
        return data_list

    def _meta_is_image(self, filename: str, img_id: str) -> bool:
        return osp.splitext(osp.basename(filename))[0] == img_id  # the challenge's ids keep any extension

    def _image_sizes(self, data_list: List[dict]) -> None:
        self._sizes_from_meta(data_list)  # meta_file is required here

    def _image_level_labels(self) -> dict:
        labels = defaultdict(list)
        for lineno, row in self._rows(self.image_level_ann_file, skip_header=True):
            where = f'{self.image_level_ann_file}:{lineno}'
            if len(row) < 3:
                raise DatasetError(f'{where}: expected "ImageID,LabelName,Confidence", got {row!r}')
            try:
                confidence = float(row[2])
            except ValueError:
                raise DatasetError(f'{where}: confidence {row[2]!r} is not a number') from None
            labels[row[0]].append((self._label(row[1], where), confidence))
        return labels

    # ------------------------------------------------------------------ load
    def load_data_list(self) -> List[dict]:
        names, self.label_id_mapping = self._parse_label_file()
        self._metainfo['classes'] = names
        self._metainfo['RELATION_MATRIX'] = self._relation_matrix()
        data_list = self._read_boxes()
        self._image_sizes(data_list)
        for info in data_list:
            scale = [info['width'], info['height'], info['width'], info['height']]
            for inst in info['instances']:
                inst['bbox'] = [v * s for v, s in zip(inst['bbox'], scale)]
        if self.image_level_ann_file is not None:
            labels = self._image_level_labels()
            for info in data_list:
                pairs = labels.get(info['img_id'], [])
                info['image_level_labels'] = np.array([p[0] for p in pairs], dtype=np.int64)
                info['confidences'] = np.array([p[1] for p in pairs], dtype=np.float32)
        return data_list

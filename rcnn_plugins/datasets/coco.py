"""``CocoDataset``: COCO-format json annotations (MMDetection 3.x name, arguments and data_info).

The json is parsed with the standard library (so a syntax error names its line) and indexed
with pycocotools' ``COCO``. ``metainfo=dict(classes=(...))`` selects categories BY NAME, label
``i`` being ``classes[i]`` whatever the order of ``categories`` in the file; ``self.cat_ids[i]``
is that category's id and ``self.cat2label`` the inverse map, so predictions can be written
back as COCO category ids. Image ids are kept exactly as in the file.

With the default classes (the 80 of COCO) a json that defines only some of them by name loads
that subset, as MMDetection does, but labels stay the indices into the 80 names (so a model with
``num_classes=80`` fits; see docs/MMDET_DIFFERENCES.md), ``cat_ids`` is None for the classes the
file lacks, and a warning lists them. A class list given in ``metainfo`` must be defined in full
(a typo there is fatal).

Per annotation, as MMDetection: ``ignore: true`` annotations are skipped, categories outside
``classes`` are skipped, ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]``, ``iscrowd`` becomes
``ignore_flag=1``, boxes with width or height < 1 px or ``area <= 0`` are dropped. Boxes reaching
outside the image are clipped to it. Everything else that is wrong is reported as described in
:mod:`.validation`.
"""
import contextlib
import io
import json
import math
import os.path as osp
from collections import Counter, defaultdict
from typing import Dict, List, Optional

from mmengine import fileio
from pycocotools.coco import COCO

from ..registry import DATASETS
from .base_det_dataset import BaseDetDataset
from .errors import DatasetError
from .palette import default_palette
from .validation import BoxSanitizer, list_some, warn

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')


def load_json(path: str, backend_args=None) -> dict:
    """Parse a json file; a missing file or a syntax error is a ``DatasetError`` naming it."""
    try:
        with fileio.get_local_path(path, backend_args=backend_args) as local_path:
            with open(local_path, encoding='utf-8') as f:
                return json.load(f)
    except FileNotFoundError as err:
        raise DatasetError(f'annotation file {path} does not exist. Check data_root and ann_file.') from err
    except json.JSONDecodeError as err:
        raise DatasetError(f'annotation file {path} is not valid json: {err.msg} at line {err.lineno}, '
                           f'column {err.colno} (truncated or not a COCO json file?); fix or re-export '
                           'it.') from err
    except UnicodeDecodeError as err:
        raise DatasetError(f'annotation file {path} is not valid json (not UTF-8 text): {err}.') from err


def _is_number(value) -> bool:
    # json numbers are int or float; bool is an int subclass but not a coordinate. Python's json
    # reads NaN / Infinity tokens: not coordinates either.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_box(value) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(_is_number(v) for v in value)


@DATASETS.register_module()
class CocoDataset(BaseDetDataset):
    """Dataset for COCO-format detection annotations.

    Args:
        ann_file: the json file (relative to ``data_root`` unless absolute).
        data_prefix: ``dict(img='train2017/')``: folder of the images, joined to ``data_root``.
        skip_unknown_categories: annotations whose ``category_id`` is not in the file's
            ``categories`` are an error by default (the file is inconsistent); True skips them
            with one warning, as MMDetection does (silently there).
        **kwargs: see :class:`BaseDetDataset` (``metainfo``, ``filter_cfg``, ``pipeline``, ...).

    Attributes (set when the annotations are loaded):
        cat_ids: category id of each label, ``cat_ids[label]`` (None for a default COCO class
            the file does not define).
        cat2label: category id -> label.
    """

    METAINFO = dict(classes=COCO_CLASSES, palette=default_palette(len(COCO_CLASSES)))
    # MMDetection's switch: repeated annotation ids are an error unless a subclass sets False.
    ANN_ID_UNIQUE = True

    def __init__(self, *args, data_prefix: dict = dict(img=''), skip_unknown_categories: bool = False,
                 **kwargs) -> None:
        self.skip_unknown_categories = skip_unknown_categories
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read, check and convert the json (see the module docstring)."""
        raw = load_json(self.ann_file, self.backend_args)
        self._check_structure(raw)
        coco = COCO()
        coco.dataset = raw
        with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
            coco.createIndex()
        self._select_categories(coco)

        prefix = self.data_prefix.get('img', '')
        sanitizer = BoxSanitizer(self.ann_file, min_size=1)
        data_list = []
        for img_id, img_info in coco.imgs.items():
            file_name = self._image_file(img_info)
            if file_name is None:
                continue
            width, height = img_info['width'], img_info['height']
            instances = []
            for ann in coco.imgToAnns.get(img_id, []):
                if ann.get('ignore', False) or ann['category_id'] not in self.cat2label:
                    continue
                x, y, w, h = ann['bbox']
                ref = f'ann id {ann["id"]} (image {img_id})'
                if ann.get('area', w * h) <= 0:
                    sanitizer.degenerate.append(ref)
                    continue
                bbox = sanitizer([x, y, x + w, y + h], width, height, ref)
                if bbox is None:
                    continue
                instances.append(dict(bbox=[float(v) for v in bbox],
                                      bbox_label=self.cat2label[ann['category_id']],
                                      ignore_flag=1 if ann.get('iscrowd', 0) else 0))
            data_list.append(dict(img_id=img_id, img_path=osp.join(prefix, file_name),
                                  height=height, width=width, instances=instances))
        sanitizer.report()
        return data_list

    def _image_file(self, img_info: dict) -> Optional[str]:
        """The image's path under the image prefix (``file_name``); None leaves the image out.
        Subclasses whose files are laid out differently (Objects365 v2) override this."""
        return img_info['file_name']

    def _check_structure(self, raw: dict) -> None:
        """Required keys and fields, box layout and category ids of every record (FATAL)."""
        src = self.ann_file
        if not isinstance(raw, dict):
            raise DatasetError(f'{src}: a COCO annotation file holds a json object, got {type(raw).__name__}.')
        for key in ('images', 'categories'):
            if not isinstance(raw.get(key), list):
                raise DatasetError(f'{src}: no "{key}" list; is this a COCO detection annotation file?')
        raw.setdefault('annotations', [])
        problems = []
        for kind, records, fields in (('image', raw['images'], ('id', 'file_name', 'width', 'height')),
                                      ('category', raw['categories'], ('id', 'name')),
                                      ('annotation', raw['annotations'], ('id', 'image_id', 'category_id', 'bbox'))):
            for i, record in enumerate(records):
                absent = [f for f in fields if f not in record] if isinstance(record, dict) else list(fields)
                if absent:
                    problems.append(f'{kind} #{i} lacks {", ".join(absent)}')
        if problems:
            raise DatasetError(f'{src}: {len(problems)} records lack required fields: {list_some(problems)}.')

        bad_sizes = [f'image id {img["id"]} ({img["width"]!r} x {img["height"]!r})' for img in raw['images']
                     if not all(_is_number(v) and v > 0 for v in (img['width'], img['height']))]
        if bad_sizes:
            raise DatasetError(f'{src}: {len(bad_sizes)} images have no positive width x height: '
                               f'{list_some(bad_sizes)}.')
        repeated = [img_id for img_id, n in Counter(img['id'] for img in raw['images']).items() if n > 1]
        if repeated:
            raise DatasetError(f'{src}: {len(repeated)} image ids occur more than once in "images": '
                               f'{list_some(repeated)}.')
        repeated = [ann_id for ann_id, n in Counter(ann['id'] for ann in raw['annotations']).items() if n > 1]
        if repeated and self.ANN_ID_UNIQUE:
            raise DatasetError(f'{src}: annotation ids are not unique: {len(repeated)} ids occur more than once in '
                               f'"annotations": {list_some(repeated)}. Give every annotation its own id.')

        bad_boxes = [f'ann id {ann["id"]}: {ann["bbox"]!r}' for ann in raw['annotations'] if not _is_box(ann['bbox'])]
        if bad_boxes:
            raise DatasetError(f'{src}: {len(bad_boxes)} annotations have a bbox that is not 4 finite numbers '
                               f'[x, y, w, h]: {list_some(bad_boxes)}; fix or remove them in the file.')

        cat_ids = {cat['id'] for cat in raw['categories']}
        file_names = {img['id']: img['file_name'] for img in raw['images']}
        unknown = [f'ann id {ann["id"]} (category_id {ann["category_id"]}, image {ann["image_id"]}, '
                   f'{file_names.get(ann["image_id"], "image not in the file")})'
                   for ann in raw['annotations'] if ann['category_id'] not in cat_ids]
        if unknown:
            problem = (f'{src}: {len(unknown)} annotations use a category_id that "categories" does not '
                       f'define (defined ids: {sorted(cat_ids)}): {list_some(unknown)}')
            if not self.skip_unknown_categories:
                raise DatasetError(f'{problem}. Fix the file, or set skip_unknown_categories=True in the dataset '
                                   'config to skip these annotations (what MMDetection does).')
            warn(f'{problem}; skipped (skip_unknown_categories=True).')
        orphans = [f'ann id {ann["id"]} (image_id {ann["image_id"]})'
                   for ann in raw['annotations'] if ann['image_id'] not in file_names]
        if orphans:
            warn(f'{src}: {len(orphans)} annotations refer to image ids that "images" does not list and are '
                 f'ignored: {list_some(orphans)}.')

    def _select_categories(self, coco: COCO) -> None:
        """Map ``metainfo['classes']`` to category ids by name; set ``cat_ids`` and ``cat2label``."""
        src = self.ann_file
        ids_by_name: Dict[str, List[int]] = defaultdict(list)
        for cat in coco.dataset['categories']:
            ids_by_name[cat['name']].append(cat['id'])
        classes = list(self.metainfo['classes'])
        undefined = [name for name in classes if name not in ids_by_name]
        # The default classes over a file defining some of them: load that subset (labels stay COCO's).
        subset = bool(undefined) and tuple(classes) == COCO_CLASSES and len(undefined) < len(classes)
        if undefined and not subset:
            raise DatasetError(f'{src}: metainfo classes {undefined} are not defined in "categories" '
                               f'(a typo? a dataset with its own classes needs metainfo=dict(classes=(...)) in its '
                               f'config). Available names: {list(ids_by_name)}.')
        if subset:
            warn(f'{src}: {len(undefined)} of the 80 default COCO classes are not defined in "categories" and '
                 f'get no annotations: {list_some(undefined)}. Give metainfo=dict(classes=(...)) to train on '
                 'the defined ones only.')
        ambiguous = [f'{name!r} (ids {ids_by_name[name]})' for name in classes if len(ids_by_name.get(name, ())) > 1]
        if ambiguous:
            raise DatasetError(f'{src}: several categories share the name of a selected class: '
                               f'{list_some(ambiguous)}; give the categories distinct names.')
        duplicated = [name for name, count in Counter(classes).items() if count > 1]
        if duplicated:
            raise DatasetError(f'metainfo classes list {duplicated} more than once.')
        self.cat_ids = [ids_by_name[name][0] if name in ids_by_name else None for name in classes]
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids) if cat_id is not None}
        counts = Counter(ann['category_id'] for ann in coco.dataset['annotations'])
        if not counts:  # an image-info file for inference: no annotations at all is expected
            return
        unused = [name for name, cat_id in zip(classes, self.cat_ids) if cat_id is not None and counts[cat_id] == 0]
        if unused:
            warn(f'{src}: {len(unused)} of the {len(classes)} classes are defined but have no annotation in '
                 f'this file: {list_some(unused)}.')

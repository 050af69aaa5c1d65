"""``CrowdHumanDataset``: CrowdHuman's ``.odgt`` annotations (MMDetection's dataset).

An ``.odgt`` file has one json record per line: ``{"ID": ..., "gtboxes": [{"tag": "person" |
"mask", "fbox": [x, y, w, h], "vbox": [...], "hbox": [...], "extra": {"ignore": 0 | 1}}, ...]}``;
images are ``<data_prefix.img>/<ID>.jpg``. The full box (``fbox``) is the training box; a box whose
tag is not a class (``mask``: a crowd region) or whose ``extra.ignore`` is set is an ignore box
(``ignore_flag=1``, label -1), as MMDetection's. ``hbox`` / ``vbox`` are kept in each instance.

Image sizes come from ``extra_ann_file`` (MMDetection's ``id_hw_*.json``: ``{ID: [h, w]}``) when
given or found next to the annotations, else from the image headers (no decoding); unlike
MMDetection, no cache file is written into ``data_root``. A malformed line is a ``DatasetError``
naming the file, the line and the field.
"""
import json
import os.path as osp
from typing import List, Optional

from PIL import Image

from ..registry import DATASETS
from .base_det_dataset import BaseDetDataset
from .errors import DatasetError


def _xywh_to_xyxy(box, where: str) -> List[float]:
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
        raise DatasetError(f'{where}: a box must be [x, y, w, h] numbers, got {box!r}')
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


@DATASETS.register_module()
class CrowdHumanDataset(BaseDetDataset):
    """Args: ``data_root``, ``ann_file`` (.odgt), ``extra_ann_file`` (``{ID: [h, w]}`` json, optional),
    the rest as :class:`BaseDetDataset` (``data_prefix=dict(img='Images/')``, ``pipeline``, ...)."""

    METAINFO = dict(classes=('person',), palette=[(220, 20, 60)])

    def __init__(self, data_root: str, ann_file: str, extra_ann_file: Optional[str] = None, **kwargs) -> None:
        if extra_ann_file is None:
            name = osp.basename(ann_file)
            guess = 'id_hw_train.json' if 'train' in name else 'id_hw_val.json' if 'val' in name else None
            if guess is not None and osp.isfile(osp.join(data_root, guess)):
                extra_ann_file = osp.join(data_root, guess)
        self.extra_ann_file = extra_ann_file
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def _sizes(self) -> dict:
        if self.extra_ann_file is None:
            return {}
        try:
            with open(self.extra_ann_file) as f:
                return json.load(f)
        except (OSError, ValueError) as err:
            raise DatasetError(f'{self.extra_ann_file}: cannot read the image sizes ({err}); it must be a json '
                               '{ID: [height, width]} (tools/misc/get_crowdhuman_id_hw.py of MMDetection)') from None

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise DatasetError(f'{self.ann_file}: annotation file not found (ann_file is relative to data_root)')
        sizes = self._sizes()
        classes = self.metainfo['classes']
        prefix = self.data_prefix.get('img', '')
        data_list = []
        with open(self.ann_file, encoding='utf-8') as f:
            lines = f.read().strip().split('\n')
        for lineno, line in enumerate(lines, 1):
            where = f'{self.ann_file}:{lineno}'
            try:
                record = json.loads(line)
            except ValueError as err:
                raise DatasetError(f'{where}: not a json record ({err}); an .odgt file has one json object per '
                                   'line') from None
            if not isinstance(record, dict) or 'ID' not in record or not isinstance(record.get('gtboxes'), list):
                raise DatasetError(f"{where}: a record needs 'ID' and a 'gtboxes' list, got keys "
                                   f'{sorted(record) if isinstance(record, dict) else type(record).__name__}')
            img_id = record['ID']
            img_path = osp.join(prefix, f'{img_id}.jpg')
            if img_id in sizes:
                height, width = sizes[img_id]
            else:
                try:
                    with Image.open(img_path) as img:   # header only
                        width, height = img.size
                except OSError as err:
                    raise DatasetError(f'{where}: image {img_path} of ID {img_id!r} cannot be read ({err}); '
                                       'check data_prefix, or give extra_ann_file with the sizes') from None
            instances = []
            for k, box in enumerate(record['gtboxes']):
                at = f'{where} (ID {img_id}, gtboxes[{k}])'
                if not isinstance(box, dict) or 'fbox' not in box or 'tag' not in box:
                    raise DatasetError(f"{at}: a box needs 'tag' and 'fbox'")
                ignore = box['tag'] not in classes or bool((box.get('extra') or {}).get('ignore', 0))
                bbox = _xywh_to_xyxy(box['fbox'], at)
                inst = dict(bbox=bbox, fbox=bbox, bbox_label=-1 if ignore else classes.index(box['tag']),
                            ignore_flag=int(ignore))
                for key in ('hbox', 'vbox'):
                    if key in box:
                        inst[key] = _xywh_to_xyxy(box[key], at)
                instances.append(inst)
            data_list.append(dict(img_id=img_id, img_path=img_path, height=height, width=width, instances=instances))
        return data_list

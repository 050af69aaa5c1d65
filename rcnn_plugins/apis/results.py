"""How ``DetInferencer`` writes its outputs: drawings, annotated videos, one json per image, json
lines per video, COCO results (:class:`OutputWriter`, :class:`CocoResultsWriter`).

- ``preds/<name>.json``: ``labels`` (K,) ints, ``scores`` (K,), ``bboxes`` (K, 4) x1, y1, x2, y2 in
  pixels of the input image (as MMDetection's DetInferencer writes them; every detection the model
  returns, not only those drawn), plus ``label_names`` (the class of each detection) and
  ``classes`` (all class names, which ``labels`` index).
- ``preds/<video name>.jsonl``: one such object per frame, with its ``frame`` index (from 0).
- ``--coco-json FILE``: every image's detections as a COCO results list (``image_id``,
  ``category_id``, ``bbox`` x, y, w, h, ``score``), which ``pycocotools.COCO.loadRes`` reads.
"""
import contextlib
import io
import json
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.structures import InstanceData
from mmengine.utils import mkdir_or_exist

from ..fileio import atomic_write
from .inputs import InputItem
from .video import VideoSink, video_out_name


def pred_to_dict(pred: InstanceData, classes: Sequence[str]) -> dict:
    """``pred_instances`` -> a json-ready dict (see module docstring)."""
    labels = pred.labels.cpu().tolist()
    return dict(labels=labels,
                scores=pred.scores.float().cpu().tolist(),
                bboxes=pred.bboxes.float().cpu().reshape(-1, 4).tolist(),
                label_names=[classes[label] for label in labels],
                classes=list(classes))


def write_json(obj, path: str) -> None:
    """``obj`` as json at ``path``, complete or not at all (:func:`rcnn_plugins.fileio.atomic_write`)."""
    with atomic_write(path, 'w') as f:
        json.dump(obj, f)


class CocoResultsWriter:
    """Collects every image's detections and writes one COCO results json.

    Args:
        classes: class names; label ``i`` is ``classes[i]``.
        ann_file: a COCO annotation json. Image ids are looked up by ``file_name`` (the input's
            relative name, else its file name), category ids by class name, as ``CocoMetric``
            maps them. Without one, category ids are the labels (0-based, as ``CocoMetric``'s
            converted ground truth) and image ids are the file stems when all of them are
            integers (COCO's ``000000397133.jpg`` -> 397133), else the images' input order (from 0).
    """

    def __init__(self, classes: Sequence[str], ann_file: Optional[str] = None) -> None:
        self.classes = list(classes)
        self.ann_file = ann_file
        self._preds: List[Tuple[str, dict]] = []
        self._img_ids: Dict[str, int] = {}
        self._cat_ids = list(range(len(self.classes)))
        if ann_file is not None:
            self._read_ann_file(ann_file)

    def _read_ann_file(self, ann_file: str) -> None:
        from pycocotools.coco import COCO
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(ann_file)
        by_name: Dict[str, int] = {}
        for img in coco.dataset.get('images', []):
            by_name[img['file_name'].replace('\\', '/')] = img['id']
        by_base: Dict[str, List[int]] = {}
        for file_name, img_id in by_name.items():
            by_base.setdefault(osp.basename(file_name), []).append(img_id)
        self._img_ids = dict(by_name)
        # A bare file name also finds an image when it is unique in the file.
        for base, ids in by_base.items():
            if len(ids) == 1:
                self._img_ids.setdefault(base, ids[0])
        ids_by_cat_name: Dict[str, int] = {}
        for cat in coco.dataset.get('categories', []):
            ids_by_cat_name.setdefault(cat['name'], cat['id'])
        missing = [name for name in self.classes if name not in ids_by_cat_name]
        if missing:
            raise ValueError(f'--ann-file {ann_file}: classes {missing} are not categories of the file '
                             f'(it has {sorted(ids_by_cat_name)}); pass the right --classes or annotation file')
        self._cat_ids = [ids_by_cat_name[name] for name in self.classes]

    def add(self, name: str, pred: dict) -> None:
        """``name``: the input's relative name; ``pred``: :func:`pred_to_dict` output."""
        self._preds.append((name, pred))

    def _image_ids(self) -> List[Optional[int]]:
        names = [name for name, _ in self._preds]
        if self.ann_file is not None:
            ids = [self._img_ids.get(name, self._img_ids.get(osp.basename(name))) for name in names]
            for name, img_id in zip(names, ids):
                if img_id is None:
                    warnings.warn(f'--coco-json: {name} is not an image of {self.ann_file}; '
                                  'its detections are left out')
            return ids
        stems = [osp.splitext(osp.basename(name))[0] for name in names]
        if all(stem.isdigit() for stem in stems) and len({int(s) for s in stems}) == len(stems):
            return [int(stem) for stem in stems]
        return list(range(len(names)))

    def dump(self, path: str) -> int:
        """Write the results file; returns the number of detections written."""
        records = []
        for img_id, (_, pred) in zip(self._image_ids(), self._preds):
            if img_id is None:
                continue
            for (x1, y1, x2, y2), score, label in zip(pred['bboxes'], pred['scores'], pred['labels']):
                records.append(dict(image_id=img_id, category_id=self._cat_ids[label],
                                    bbox=[x1, y1, x2 - x1, y2 - y1], score=score))
        write_json(records, path)
        return len(records)


class OutputWriter:
    """One call's files under ``out_dir``: ``vis/<name>`` (the drawing of an image; a video's
    drawings as one annotated video, see :mod:`rcnn_plugins.apis.video`) and ``preds/<stem>.json``
    (``.jsonl`` for a video). Frames of a video must arrive in order and together; the video's
    files are closed when another input's result arrives, or by :meth:`close`.
    """

    def __init__(self, out_dir: str, save_vis: bool, save_pred: bool) -> None:
        self.out_dir = out_dir
        self.save_vis = save_vis
        self.save_pred = save_pred
        self._video: Optional[InputItem] = None  # the video whose files are open
        self._video_sink: Optional[VideoSink] = None
        self._jsonl = None

    def write(self, item: InputItem, index: Optional[int], pred: dict,
              drawing: Optional[np.ndarray]) -> None:
        """One result: ``index`` is the frame index for videos (None for images), ``pred`` the
        :func:`pred_to_dict` output, ``drawing`` the RGB drawing (needed when saving vis)."""
        if item is not self._video:
            self.close()
        stem = osp.splitext(item.name)[0]
        if index is None:
            if self.save_vis:
                mmcv.imwrite(drawing[..., ::-1], osp.join(self.out_dir, 'vis', item.name))
            if self.save_pred:
                write_json(pred, osp.join(self.out_dir, 'preds', stem + '.json'))
            return
        if self._video is None:  # the first frame of a video opens its outputs
            self._video = item
            if self.save_vis:
                self._video_sink = VideoSink(osp.join(self.out_dir, 'vis', video_out_name(item.name)),
                                             item.fps)
            if self.save_pred:
                path = osp.join(self.out_dir, 'preds', stem + '.jsonl')
                mkdir_or_exist(osp.dirname(path))
                self._jsonl = open(path, 'w')
        if self._video_sink is not None:
            self._video_sink.write(np.ascontiguousarray(drawing[..., ::-1]))
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(dict(frame=index, **pred)) + '\n')

    def close(self) -> None:
        if self._video_sink is not None:
            self._video_sink.close()
        if self._jsonl is not None:
            self._jsonl.close()
        self._video, self._video_sink, self._jsonl = None, None, None

"""Proposal files (MMDetection's format): read them safely, match them to a dataset, write them.

A proposal file is a pickle holding, for every image of a dataset, its proposals in
original-image pixels (xyxy), either as

- a list aligned with the dataset's images in annotation-file order (before ``filter_cfg``),
  each entry an ``(N, 4)`` or ``(N, 5)`` array (5th column: score), MMDetection 2.x's format and
  what ``tools/misc/gen_proposals.py`` writes; or
- a dict keyed by ``'<parent folder>/<file name>'`` of the image path, as MMDetection 3.x's
  ``BaseDetDataset.load_proposals`` looks them up, each value an array as above or
  ``dict(bboxes=(N, 4), scores=(N,))``.

Unpickling runs code named in the file, so a proposal file is read with
:func:`rcnn_plugins.fileio.safe_pickle.restricted_load`, which only builds numpy arrays, dtypes and scalars
(plus the plain lists, dicts, tuples, numbers and strings pickle builds without importing
anything); a file naming anything else (a class whose ``__reduce__`` would run a command, an
``InstanceData``, a torch tensor) is refused before any of it is built.
"""
import io
import os.path as osp
import pickle
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine import fileio

from ..fileio import NUMPY_GLOBALS, RefusedGlobal, atomic_write, restricted_load
from .errors import DatasetError


def load_proposal_file(path: str, backend_args: Optional[dict] = None) -> Any:
    """Read a ``.pkl`` proposal file with the restricted unpickler; returns its list or dict."""
    if not path.endswith(('.pkl', '.pickle')):
        raise DatasetError(f'proposal file {path}: expected a .pkl / .pickle file (MMDetection\'s format)')
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise DatasetError(f'proposal file {path} does not exist; check proposal_file (relative paths are '
                           'joined to data_root) or generate it with tools/misc/gen_proposals.py') from err
    try:
        return restricted_load(io.BytesIO(data), NUMPY_GLOBALS)
    except RefusedGlobal as err:
        raise DatasetError(
            f'proposal file {path} refers to {err.module}.{err.name}; a proposal file may only hold '
            'lists/dicts of numpy arrays, so it is not loaded (unpickling it could run code). '
            'Convert it: a list (or a dict keyed by "folder/file name") of (N, 4) or (N, 5) '
            'float arrays, one per image.') from None
    except Exception as err:  # truncated or not a pickle at all
        raise DatasetError(f'proposal file {path} is not a readable pickle: {type(err).__name__}: {err}') from err


def image_key(img_path: str) -> str:
    """MMDetection 3.x's key of an image in a proposal dict: ``'<parent folder>/<file name>'``."""
    folder, name = osp.split(img_path)
    return osp.join(osp.basename(folder), name)


def _as_proposals(entry: Any, where: str) -> Dict[str, np.ndarray]:
    """One image's entry -> ``dict(bboxes=float32 (N, 4), scores=float32 (N,))``."""
    if isinstance(entry, dict):
        if 'bboxes' not in entry:
            raise DatasetError(f'{where}: a proposals dict needs "bboxes" (N, 4), got keys {sorted(entry)}')
        bboxes = np.asarray(entry['bboxes'], dtype=np.float32)
        scores = entry.get('scores')
    else:
        bboxes, scores = np.asarray(entry, dtype=np.float32), None
    if bboxes.size == 0:
        bboxes = bboxes.reshape(0, 4)
    if bboxes.ndim != 2 or bboxes.shape[1] not in (4, 5) or (scores is not None and bboxes.shape[1] != 4):
        raise DatasetError(f'{where}: proposals must be an (N, 4) or (N, 5) array (x1, y1, x2, y2[, score]) '
                           f'or dict(bboxes=(N, 4), scores=(N,)), got shape {bboxes.shape}')
    if bboxes.shape[1] == 5:
        bboxes, scores = bboxes[:, :4], bboxes[:, 4]
    scores = np.zeros(len(bboxes), np.float32) if scores is None else np.asarray(scores, np.float32).reshape(-1)
    if len(scores) != len(bboxes):
        raise DatasetError(f'{where}: {len(bboxes)} proposal boxes but {len(scores)} scores')
    if not np.isfinite(bboxes).all():
        raise DatasetError(f'{where}: proposals contain NaN or infinite coordinates')
    return dict(bboxes=np.ascontiguousarray(bboxes), scores=np.ascontiguousarray(scores))


def match_proposals(loaded: Any, data_list: List[dict], path: str) -> None:
    """Set ``data_info['proposals']`` of every data_info from the loaded file (list or dict)."""
    if isinstance(loaded, (list, tuple)):
        if len(loaded) != len(data_list):
            raise DatasetError(f'proposal file {path} has {len(loaded)} entries but the annotation file lists '
                               f'{len(data_list)} images; a proposal list must be aligned with the annotation '
                               'file (regenerate it for this dataset)')
        for k, (entry, info) in enumerate(zip(loaded, data_list)):
            info['proposals'] = _as_proposals(entry, f'proposal file {path}, entry {k} ({info["img_path"]})')
    elif isinstance(loaded, dict):
        missing = [info['img_path'] for info in data_list if image_key(info['img_path']) not in loaded]
        if missing:
            raise DatasetError(f'proposal file {path} has no entry for {len(missing)} of {len(data_list)} images, '
                               f'e.g. key {image_key(missing[0])!r} ({missing[0]}); keys are "folder/file name"')
        for info in data_list:
            key = image_key(info['img_path'])
            info['proposals'] = _as_proposals(loaded[key], f'proposal file {path}, key {key!r}')
    else:
        raise DatasetError(f'proposal file {path} holds a {type(loaded).__name__}; expected a list aligned with '
                           'the images or a dict keyed by "folder/file name"')


def dump_proposal_file(proposals: Sequence[np.ndarray], path: str) -> None:
    """Write a proposal list (one ``(N, 5)`` float32 array per image) atomically to ``path``."""
    with atomic_write(path) as f:
        # protocol 4: readable by every Python 3 and numpy version MMDetection users have
        pickle.dump([np.ascontiguousarray(p, dtype=np.float32) for p in proposals], f, protocol=4)

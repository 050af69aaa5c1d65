"""Folder inference spread over processes (``torchrun --nproc-per-node N tools/infer.py ... --launcher
pytorch``) and resumable after a kill (``--resume``).

- Every rank expands the same inputs to the same ordered list and takes a disjoint shard of it
  (items ``rank, rank + N, ...``), so N processes together predict every image once.
- Each image's ``preds/<stem>.json`` (and ``vis/<name>``, written before it) is written
  atomically (:func:`write_output`: temp file, fsync, rename), so a file that exists is complete;
  ``--resume`` skips the images whose prediction file exists and parses.
- After every rank finished, rank 0 builds the COCO results json from the per-image files of
  the whole list (in input order), so it equals a one-process run's and includes images
  predicted before a restart.

Predictions per image equal a one-process run's: each image runs alone or batched with images
of the same padded shape (:mod:`rcnn_plugins.apis.batching`), whichever rank it is on.
"""
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..fileio import atomic_write, remove_stale_partials
from .inputs import InputItem, InputsType, collect_inputs
from .results import CocoResultsWriter, pred_to_dict

PRED_KEYS = ('labels', 'scores', 'bboxes')


def write_output(path: str, data: bytes) -> None:
    """The one place outputs are written: atomically (:func:`rcnn_plugins.fileio.atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def dist_env() -> Tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) outside torchrun."""
    return (int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1)),
            int(os.environ.get('LOCAL_RANK', 0)))


def shard(items: List[InputItem], rank: int, world: int) -> List[InputItem]:
    """Rank ``rank``'s disjoint share: every ``world``-th item from ``rank`` (sizes differ by at most 1)."""
    return items[rank::world]


def pred_path(out_dir: str, item: InputItem) -> str:
    return osp.join(out_dir, 'preds', osp.splitext(item.name)[0] + '.json')


def read_pred(path: str) -> Optional[dict]:
    """The prediction in ``path`` when the file exists and is complete (valid json with equally long
    ``labels``, ``scores``, ``bboxes``); None else."""
    try:
        with open(path, 'rb') as f:
            pred = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(pred, dict) or any(not isinstance(pred.get(k), list) for k in PRED_KEYS):
        return None
    return pred if len({len(pred[k]) for k in PRED_KEYS}) == 1 else None


def _encode(name: str, rgb: np.ndarray) -> bytes:
    ext = osp.splitext(name)[1].lower() or '.png'
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError(f'cannot encode the drawing of {name} as {ext}')
    return buf.tobytes()


def predict_shard(inferencer, inputs: InputsType, out_dir: str, rank: int = 0, world: int = 1,
                  resume: bool = False, batch_size: int = 1, score_thr: float = 0.3, save_vis: bool = True,
                  recursive: bool = False) -> Tuple[List[InputItem], int, int]:
    """Predict rank ``rank``'s shard of ``inputs`` into ``out_dir`` (see module docstring).

    Returns (every input item, images predicted now, images of this shard with a complete
    prediction file at the end).
    """
    items = collect_inputs(inputs, recursive=recursive)
    videos = [item.path for item in items if item.is_video]
    if videos:
        raise ValueError(f'--launcher / --resume run on images; {videos[0]} is a video: run videos without them')
    mine = shard(items, rank, world)
    if resume:
        _remove_stale_temps(out_dir, mine)
    todo = [item for item in mine if not (resume and read_pred(pred_path(out_dir, item)) is not None)]
    if resume and len(todo) < len(mine):
        print(f'rank {rank}: --resume: {len(mine) - len(todo)} of {len(mine)} images already have predictions',
              file=sys.stderr)
    inferencer.skipped = []
    predicted = 0
    progress = tqdm(total=len(todo), unit='img', disable=not inferencer.show_progress or rank != 0,
                    dynamic_ncols=True)
    frames = inferencer._frames(todo, progress)
    for (item, _, img), sample in inferencer._predicted(frames, batch_size, None, progress):
        pred = pred_to_dict(sample.pred_instances, inferencer.classes)
        if save_vis:  # before the prediction file: its presence means this image is done
            drawing = inferencer._draw(item.name, img, sample, True, False, 0, score_thr)
            write_output(osp.join(out_dir, 'vis', item.name), _encode(item.name, drawing))
        write_output(pred_path(out_dir, item), json.dumps(pred).encode())
        predicted += 1
    progress.close()
    if inferencer.skipped:
        print(f'rank {rank}: {len(inferencer.skipped)} input(s) could not be read and were skipped: '
              f'{", ".join(inferencer.skipped)}', file=sys.stderr)
    complete = sum(read_pred(pred_path(out_dir, item)) is not None for item in mine)
    return items, predicted, complete


def _remove_stale_temps(out_dir: str, mine: List[InputItem]) -> None:
    """Delete the temporary files killed writers left for this shard's outputs (never another
    rank's: only this shard's names, and only of processes that are gone)."""
    for item in mine:
        for target in (pred_path(out_dir, item), osp.join(out_dir, 'vis', item.name)):
            remove_stale_partials(osp.dirname(target), osp.basename(target))


def merge_coco(items: List[InputItem], out_dir: str, classes, coco_json: str, ann_file: Optional[str] = None) -> int:
    """COCO results of every item with a prediction file under ``out_dir``, in input order -> ``coco_json``."""
    writer = CocoResultsWriter(classes, ann_file)
    for item in items:
        pred = read_pred(pred_path(out_dir, item))
        if pred is not None:
            writer.add(item.name, pred)
    tmp = coco_json + f'.{os.getpid()}.part'
    try:
        num = writer.dump(tmp)
        with open(tmp, 'rb') as f:
            write_output(coco_json, f.read())
    finally:
        if osp.exists(tmp):
            os.unlink(tmp)
    return num

"""Small helpers shared by the heads and detectors: unpacking ground truth from data samples,
empty results, config checks, the dense heads' training step, and the error type of MMDetection's
argument assertions."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ..structures import DetDataSample
from ..structures.errors import MMDetArgumentError  # noqa: F401  (re-exported for the models)


def unpack_gt_instances(batch_data_samples: Sequence[DetDataSample]
                        ) -> Tuple[List[InstanceData], List[Optional[InstanceData]], List[dict]]:
    """Split data samples into what the losses need.

    Returns:
        ``(batch_gt_instances, batch_gt_instances_ignore, batch_img_metas)``: per image the
        ``gt_instances`` (``bboxes`` (G, 4), ``labels`` (G,)), the ``ignored_instances`` or None
        when the sample has none, and the metainfo dict.
    """
    gts, ignores, metas = [], [], []
    for i, sample in enumerate(batch_data_samples):
        if 'gt_instances' not in sample:
            raise ValueError(f'data sample {i} has no gt_instances; training needs gt_instances with '
                             "'bboxes' (G, 4) and 'labels' (G,) (G may be 0)")
        gts.append(sample.gt_instances)
        ignores.append(sample.ignored_instances if 'ignored_instances' in sample else None)
        metas.append(sample.metainfo)
    return gts, ignores, metas


def _empty_one(device, dtype, num_classes: int = 80, score_per_cls: bool = False,
               results: Optional[InstanceData] = None) -> InstanceData:
    results = InstanceData() if results is None else results
    results.bboxes = torch.zeros((0, 4), device=device, dtype=dtype)
    results.scores = torch.zeros((0, num_classes + 1) if score_per_cls else (0,), device=device, dtype=dtype)
    results.labels = torch.zeros((0,), device=device, dtype=torch.long)
    return results


def empty_instances(batch_img_metas: Union[List[dict], torch.device, str], device=None,
                    task_type: Optional[str] = None, instance_results: Optional[List[InstanceData]] = None,
                    mask_thr_binary: float = 0, box_type: str = 'hbox', use_box_type: bool = False,
                    num_classes: int = 80, score_per_cls: bool = False,
                    dtype: torch.dtype = torch.float32) -> Union[InstanceData, List[InstanceData]]:
    """Detections of images with nothing found: ``bboxes`` (0, 4), ``scores`` (0,), ``labels`` (0,).

    Two call forms:

    - ``empty_instances(device, dtype=...)`` -> one ``InstanceData`` (our heads' short form);
    - MMDetection's ``empty_instances(batch_img_metas, device, task_type, instance_results=None,
      ..., num_classes=80, score_per_cls=False)`` -> one per image in a list; ``task_type`` must
      be ``'bbox'`` (no mask heads here), ``score_per_cls`` gives (0, num_classes + 1) scores and
      ``instance_results``, if given, are filled in place and returned.
    """
    if not isinstance(batch_img_metas, (list, tuple)):  # short form: the first argument is the device
        return _empty_one(batch_img_metas, dtype)
    if task_type not in ('bbox', 'mask'):
        raise MMDetArgumentError(f"empty_instances: task_type must be 'bbox' or 'mask', got {task_type!r}")
    if task_type == 'mask':
        raise NotImplementedError("empty_instances(task_type='mask'): rcnn_plugins has no mask heads "
                                  '(see docs/MMDET_DIFFERENCES.md)')
    if box_type != 'hbox' or use_box_type:
        raise NotImplementedError("empty_instances: only box_type='hbox' with use_box_type=False (plain (N, 4) "
                                  'tensors; there are no box classes here)')
    if instance_results is not None and len(instance_results) != len(batch_img_metas):
        raise MMDetArgumentError(f'empty_instances: {len(instance_results)} instance_results for '
                                 f'{len(batch_img_metas)} images')
    return [_empty_one(device, dtype, num_classes, score_per_cls,
                       None if instance_results is None else instance_results[i])
            for i in range(len(batch_img_metas))]


def require_cfg(cfg, keys: Sequence[str], where: str) -> None:
    """Raise a clear error when a train/test config lacks keys a head needs."""
    if cfg is None:
        raise ValueError(f'{where}: config is None; it needs the keys {list(keys)}')
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise ValueError(f'{where}: config lacks {missing}; add them (see '
                         'configs/_base_/models/faster-rcnn_r50_fpn.py for the defaults)')


def dense_head_loss(head, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                    proposal_cfg=None, with_predictions: bool = False):
    """A dense head's training step, MMDetection's ``BaseDenseHead.loss`` / ``loss_and_predict``:
    ``head(x)`` once, then ``head.loss_by_feat(*outs, gts, metas, ignores)`` and, with
    ``with_predictions``, ``head.predict_by_feat(*outs, batch_img_metas=metas, cfg=proposal_cfg)``
    (the proposals of the same forward pass).

    Returns:
        the loss dict, or (loss dict, list of InstanceData per image) with ``with_predictions``.
    """
    outs = head(x)
    gts, ignores, metas = unpack_gt_instances(batch_data_samples)
    losses = head.loss_by_feat(*outs, gts, metas, ignores)
    if not with_predictions:
        return losses
    return losses, head.predict_by_feat(*outs, batch_img_metas=metas, cfg=proposal_cfg)

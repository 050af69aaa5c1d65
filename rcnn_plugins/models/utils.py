"""Small helpers shared by the heads and detectors: unpacking ground truth from data samples,
empty results, and config checks."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData

from ..structures import DetDataSample


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


def empty_instances(device: torch.device, dtype: torch.dtype = torch.float32) -> InstanceData:
    """Detections of an image with nothing found: ``bboxes`` (0, 4), ``scores`` (0,), ``labels`` (0,)."""
    return InstanceData(bboxes=torch.zeros((0, 4), device=device, dtype=dtype),
                        scores=torch.zeros((0,), device=device, dtype=dtype),
                        labels=torch.zeros((0,), device=device, dtype=torch.long))


def require_cfg(cfg, keys: Sequence[str], where: str) -> None:
    """Raise a clear error when a train/test config lacks keys a head needs."""
    if cfg is None:
        raise ValueError(f'{where}: config is None; it needs the keys {list(keys)}')
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise ValueError(f'{where}: config lacks {missing}; add them (see '
                         'configs/_base_/models/faster-rcnn_r50_fpn.py for the defaults)')

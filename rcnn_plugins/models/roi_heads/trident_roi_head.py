"""``TridentRoIHead``: the RoI head of TridentNet (Li et al., 2019, "Scale-Aware Trident Networks").

The trident backbone runs ``num_branch`` weight-sharing branches with different dilations and
returns their feature maps stacked branch-major along the batch (branch ``k``, image ``i`` at index
``k * B + i``); ``TridentFasterRCNN`` repeats the data samples to match, so this head sees
``num_branch * B`` "images". At test time the detections of one image's branches are merged by
class-wise NMS and cut to ``max_per_img``; with ``test_branch_idx >= 0`` only that branch runs (the
paper's fast approximation) and there is nothing to merge. MMDetection's name and arguments.
"""
from typing import List, Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ...structures import DetDataSample
from ..layers.nms import batched_nms
from .standard_roi_head import StandardRoIHead


@MODELS.register_module()
class TridentRoIHead(StandardRoIHead):
    """StandardRoIHead over the trident branches, merging them at test time.

    Args:
        num_branch: branches of the trident backbone (3).
        test_branch_idx: the one branch run at test time, or -1 for all (merged).
        **kwargs: ``StandardRoIHead`` arguments.
    """

    def __init__(self, num_branch: int, test_branch_idx: int, **kwargs) -> None:
        if num_branch < 1 or not -1 <= test_branch_idx < num_branch:
            raise ValueError(f'TridentRoIHead: need num_branch >= 1 and -1 <= test_branch_idx < num_branch, '
                             f'got {num_branch}, {test_branch_idx}')
        self.num_branch = num_branch
        self.test_branch_idx = test_branch_idx
        super().__init__(**kwargs)

    def merge_trident_bboxes(self, trident_results: Sequence[InstanceData]) -> InstanceData:
        """One image's detections of all branches -> class-wise NMS (``test_cfg.nms``), best
        ``test_cfg.max_per_img`` kept (sorted by score)."""
        bboxes = torch.cat([res.bboxes for res in trident_results])
        scores = torch.cat([res.scores for res in trident_results])
        labels = torch.cat([res.labels for res in trident_results])
        if bboxes.numel() == 0:
            results = InstanceData(bboxes=bboxes, scores=scores, labels=labels)
        else:
            dets, keep = batched_nms(bboxes, scores, labels, self.test_cfg['nms'])
            results = InstanceData(bboxes=dets[:, :4], scores=dets[:, -1], labels=labels[keep])
        if self.test_cfg['max_per_img'] > 0:
            results = results[:self.test_cfg['max_per_img']]
        return results

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Sequence[DetDataSample], rescale: bool = False) -> List[InstanceData]:
        """Per image InstanceData(bboxes, scores, labels), the branches merged.

        ``batch_data_samples`` are the ``num_branch``-times repeated samples (``samples * num_branch``):
        image ``i``'s branches are entries ``i, i + B, i + 2B, ...``.
        """
        results_list = super().predict(x, rpn_results_list, batch_data_samples, rescale=rescale)
        num_branch = self.num_branch if self.training or self.test_branch_idx == -1 else 1
        num_imgs = len(batch_data_samples) // num_branch
        return [self.merge_trident_bboxes(results_list[i::num_imgs]) for i in range(num_imgs)]

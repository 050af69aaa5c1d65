"""``BboxOverlaps2D``: the IoU calculator assigners are configured with (``iou_calculator=``)."""
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from rcnn_plugins.structures import bbox_overlaps


@TASK_UTILS.register_module()
class BboxOverlaps2D:
    """Pairwise IoU / IoF of axis-aligned xyxy boxes (see :func:`rcnn_plugins.structures.bbox_overlaps`)."""

    def __call__(self, bboxes1: Tensor, bboxes2: Tensor, mode: str = 'iou', is_aligned: bool = False) -> Tensor:
        """(M, 4|5), (N, 4|5) -> (M, N) overlaps, or (M,) if ``is_aligned``.

        A fifth column (a score, as on proposals) is dropped.
        """
        for name, boxes in (('bboxes1', bboxes1), ('bboxes2', bboxes2)):
            if boxes.size(-1) not in (4, 5):
                raise ValueError(f'BboxOverlaps2D: {name} must have 4 (xyxy) or 5 (xyxy, score) columns, '
                                 f'got shape {tuple(boxes.shape)}')
        return bbox_overlaps(bboxes1[..., :4], bboxes2[..., :4], mode=mode, is_aligned=is_aligned)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'

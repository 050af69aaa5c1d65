"""``ApproxMaxIoUAssigner`` (guided anchoring): a square anchor is assigned by the best IoU of its
group of approximating anchors (the ``approxs_per_octave`` scales x ratios placed at its location),
so a location is positive when *some* anchor shape there fits a gt well."""
from typing import Optional

from mmengine.structures import InstanceData

from rcnn_plugins.registry import TASK_UTILS
from .assign_result import AssignResult
from .max_iou_assigner import MaxIoUAssigner


@TASK_UTILS.register_module()
class ApproxMaxIoUAssigner(MaxIoUAssigner):
    """MaxIoUAssigner over groups of approxs (MMDetection's ``ApproxMaxIoUAssigner``; same arguments
    and thresholds as :class:`MaxIoUAssigner`)."""

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign ``pred_instances.priors`` (N, 4) squares, each with ``pred_instances.approxs``
        (N, A, 4), to ``gt_instances`` (bboxes (G, 4), labels (G,)).

        The overlap of square n with gt g is ``max_a IoU(approxs[n, a], gt g)``; the thresholds then
        apply as in :class:`MaxIoUAssigner`. Squares whose ``iof`` with an ignore box exceeds
        ``ignore_iof_thr`` are ignored (-1).
        """
        squares, approxs = pred_instances.priors, pred_instances.get('approxs')
        if approxs is None or approxs.dim() != 3 or approxs.shape[0] != squares.shape[0]:
            raise ValueError('ApproxMaxIoUAssigner: pred_instances needs priors (N, 4) and approxs (N, A, 4), got '
                             f'approxs of shape {None if approxs is None else tuple(approxs.shape)} for '
                             f'{squares.shape[0]} priors (use MaxIoUAssigner for plain anchors)')
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        num_squares, num_approxs = approxs.shape[:2]
        if num_squares == 0 or gt_bboxes.shape[0] == 0:
            return self.assign_wrt_overlaps(approxs.new_zeros(gt_bboxes.shape[0], num_squares), gt_labels)
        device = squares.device
        on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        gt_ignore = None if gt_instances_ignore is None else gt_instances_ignore.get('bboxes')
        if on_cpu:
            squares, approxs, gt_bboxes, gt_labels = squares.cpu(), approxs.cpu(), gt_bboxes.cpu(), gt_labels.cpu()
            gt_ignore = None if gt_ignore is None else gt_ignore.cpu()
        # (G, N * A) -> (G, N, A) -> best approx of each square: (G, N).
        overlaps = self.iou_calculator(gt_bboxes, approxs.reshape(-1, 4))
        overlaps = overlaps.view(-1, num_squares, num_approxs).max(dim=2).values
        if self.ignore_iof_thr > 0 and gt_ignore is not None and gt_ignore.numel() > 0:
            if self.ignore_wrt_candidates:
                ignore_max = self.iou_calculator(squares, gt_ignore, mode='iof').max(dim=1).values
            else:
                ignore_max = self.iou_calculator(gt_ignore, squares, mode='iof').max(dim=0).values
            overlaps[:, ignore_max > self.ignore_iof_thr] = -1
        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if on_cpu:
            result.gt_inds, result.max_overlaps = result.gt_inds.to(device), result.max_overlaps.to(device)
            result.labels = result.labels.to(device)
        return result

"""``FastRCNN``: the second stage alone, on proposals given with the images (Girshick, 2015).

A ``TwoStageDetector`` without ``rpn_head``, as MMDetection 3.x's ``FastRCNN``: ``loss`` and
``predict`` take each image's proposals from ``data_sample.proposals`` (``InstanceData`` with
``bboxes`` (N, 4) in resized-image pixels and ``scores`` (N,)), which the pipeline makes from the
dataset's ``proposal_file`` with ``LoadProposals`` -> ``Resize`` / ``RandomFlip`` ->
``PackDetInputs``. The proposals may come from any source; ``tools/misc/gen_proposals.py``
writes those of a trained RPN.
"""
from typing import Optional

from ...registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class FastRCNN(TwoStageDetector):
    """Fast R-CNN: backbone (+ neck) and a RoI head over precomputed proposals.

    Args:
        backbone, roi_head, neck: component configs (no ``rpn_head``).
        train_cfg: ``rcnn`` (RoI assigner / sampler); test_cfg: ``rcnn`` (score_thr, nms, max_per_img).
        data_preprocessor, init_cfg: as ``TwoStageDetector``.
    """

    def __init__(self, backbone: dict, roi_head: dict, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, neck: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(backbone=backbone, neck=neck, roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)

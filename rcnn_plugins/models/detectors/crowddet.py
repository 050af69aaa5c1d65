"""``CrowdDet``: "Detection in Crowded Scenes: One Proposal, Multiple Predictions" (Chu et al., CVPR 2020);
a ``TwoStageDetector`` whose RoI head is a ``MultiInstanceRoIHead`` (k boxes per proposal, EMD loss,
set NMS)."""
from typing import Optional

from ...registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class CrowdDet(TwoStageDetector):
    """CrowdDet: ``TwoStageDetector`` with an RPN head and a MultiInstanceRoIHead (see their args).

    As in MMDetection, ``rpn_head``, ``roi_head``, ``train_cfg`` and ``test_cfg`` are required.
    """

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict, train_cfg: Optional[dict],
                 test_cfg: Optional[dict], neck: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head, roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)

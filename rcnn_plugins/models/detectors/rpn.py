"""``RPN``: a proposal-only detector (backbone -> neck -> RPN head), e.g. to evaluate proposal recall.

As in MMDetection its head is the ``bbox_head`` attribute (``state_dict`` keys ``bbox_head.rpn_*``),
and ``predict`` returns the proposals as ``pred_instances`` (labels all 0), in original-image
pixels when ``rescale``.
"""
from typing import List, Optional

from torch import Tensor

from ...registry import MODELS, build_or_use
from ...structures import DetDataSample
from .base import BaseDetector, check_data_samples, check_train_test_cfgs, objectness_samples, rpn_head_config


@MODELS.register_module()
class RPN(BaseDetector):
    """Region proposal network as a detector.

    Args:
        backbone, neck, rpn_head: component configs (neck None: the head runs on the backbone's outputs).
        train_cfg: ``rpn``: the head's assigner / sampler config (as in a Faster R-CNN config).
        test_cfg: ``rpn``: proposal settings (nms_pre, max_per_img, nms, min_bbox_size).
    """

    def __init__(self, backbone: dict, neck: Optional[dict], rpn_head: dict, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        check_train_test_cfgs(train_cfg, test_cfg)
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        self.bbox_head = build_or_use(MODELS, rpn_head_config(rpn_head, train_cfg, test_cfg, 'RPN'))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def loss(self, batch_inputs: Tensor, batch_data_samples: List[DetDataSample]) -> dict:
        """``loss_rpn_cls``, ``loss_rpn_bbox``."""
        check_data_samples(batch_inputs, batch_data_samples, need_gt=True)
        x = self.extract_feat(batch_inputs)
        return self.bbox_head.loss(x, objectness_samples(batch_data_samples))

    def predict(self, batch_inputs: Tensor, batch_data_samples: List[DetDataSample],
                rescale: bool = True) -> List[DetDataSample]:
        check_data_samples(batch_inputs, batch_data_samples, need_gt=False)
        x = self.extract_feat(batch_inputs)
        results_list = self.bbox_head.predict(x, batch_data_samples, rescale=rescale)
        for sample, results in zip(batch_data_samples, results_list):
            sample.pred_instances = results
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples: Optional[List[DetDataSample]] = None):
        """Raw head outputs (cls_scores per level, bbox_preds per level)."""
        return self.bbox_head(self.extract_feat(batch_inputs))

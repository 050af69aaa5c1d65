"""``RPN``: a proposal-only detector (backbone -> neck -> RPN head), e.g. to evaluate proposal recall.

As in MMDetection its head is the ``bbox_head`` attribute (``state_dict`` keys ``bbox_head.rpn_*``),
and ``predict`` returns the proposals as ``pred_instances`` (labels all 0), in original-image
pixels when ``rescale``.
"""
import copy
import warnings
from typing import List, Optional

from mmengine.model import BaseModel
from torch import Tensor

from ...registry import MODELS
from ...structures import DetDataSample
from .two_stage import build_data_preprocessor, check_data_samples, objectness_samples


@MODELS.register_module()
class RPN(BaseModel):
    """Region proposal network as a detector.

    Args:
        backbone, neck, rpn_head: component configs.
        train_cfg: ``rpn``: the head's assigner / sampler config (as in a Faster R-CNN config).
        test_cfg: ``rpn``: proposal settings (nms_pre, max_per_img, nms, min_bbox_size).
    """

    def __init__(self, backbone: dict, neck: dict, rpn_head: dict, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(data_preprocessor=build_data_preprocessor(data_preprocessor), init_cfg=init_cfg)
        if test_cfg is None or 'rpn' not in test_cfg:
            raise ValueError('RPN: test_cfg.rpn is required (nms_pre, max_per_img, nms, min_bbox_size)')
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        head_cfg = copy.deepcopy(rpn_head)
        if head_cfg.get('num_classes', 1) != 1:
            warnings.warn(f"rpn_head.num_classes should be 1 in an RPN, got {head_cfg['num_classes']}; using 1")
        head_cfg.update(num_classes=1, train_cfg=train_cfg['rpn'] if train_cfg is not None else None,
                        test_cfg=test_cfg['rpn'])
        self.bbox_head = MODELS.build(head_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def extract_feat(self, batch_inputs: Tensor):
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.neck is not None else x

    def forward(self, inputs: Tensor, data_samples: Optional[List[DetDataSample]] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"Invalid mode {mode!r}; use 'loss', 'predict' or 'tensor'")

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

"""``TwoStageDetector``: backbone -> neck -> RPN head -> RoI head (MMDetection 3.x semantics).

``loss`` returns the RPN and RoI head losses, ``predict`` data samples with ``pred_instances`` in
original-image pixels, ``_forward`` the raw head outputs (``mode='tensor'``).
"""
import copy
from typing import List, Optional

from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS, build_or_use
from ...structures import DetDataSample
from .base import BaseDetector, check_data_samples, check_train_test_cfgs, objectness_samples, rpn_head_config


@MODELS.register_module()
class TwoStageDetector(BaseDetector):
    """Two-stage detector.

    Args:
        backbone, neck, rpn_head, roi_head: component configs (MODELS).
        train_cfg: ``rpn`` (RPN assigner/sampler), ``rpn_proposal`` (proposals used for training
            the RoI head), ``rcnn`` (RoI assigner/sampler).
        test_cfg: ``rpn`` (proposals at test time), ``rcnn`` (score_thr, nms, max_per_img).
        data_preprocessor: config or module (DetDataPreprocessor).
    """

    def __init__(self, backbone: dict, neck: Optional[dict] = None, rpn_head: Optional[dict] = None,
                 roi_head: Optional[dict] = None, train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None) -> None:
        check_train_test_cfgs(train_cfg, test_cfg)
        if roi_head is None:
            raise ValueError(f'{type(self).__name__} needs a roi_head config (for proposals only use RPN)')
        super().__init__(backbone, neck, data_preprocessor, init_cfg)
        if rpn_head is not None:
            self.rpn_head = build_or_use(MODELS, rpn_head_config(rpn_head, train_cfg, test_cfg, type(self).__name__))
        if isinstance(roi_head, dict):
            roi_head = copy.deepcopy(roi_head)
            roi_head.update(train_cfg=train_cfg['rcnn'] if train_cfg is not None else None,
                            test_cfg=test_cfg['rcnn'] if test_cfg is not None else None)
        self.roi_head = build_or_use(MODELS, roi_head)  # a built head keeps its own train/test cfg
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_rpn(self) -> bool:
        return hasattr(self, 'rpn_head') and self.rpn_head is not None

    def head_samples(self, batch_data_samples: List[DetDataSample]) -> List[DetDataSample]:
        """The data samples the heads see, one per image of the features: the inputs' own here;
        TridentFasterRCNN repeats them once per trident branch."""
        return batch_data_samples

    def _proposals(self, x, batch_data_samples) -> List[InstanceData]:
        """Precomputed ``proposals`` of the samples when they have them, else RPN proposals
        (resized-image pixels)."""
        if all('proposals' in s for s in batch_data_samples):
            return [s.proposals for s in batch_data_samples]
        if not self.with_rpn:
            raise ValueError(f'{type(self).__name__} has no rpn_head: every data sample needs precomputed '
                             "proposals (a dataset proposal_file and LoadProposals before Resize in the pipeline)")
        return self.rpn_head.predict(x, batch_data_samples, rescale=False)

    def loss(self, batch_inputs: Tensor, batch_data_samples: List[DetDataSample]) -> dict:
        """Losses: ``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_cls``, ``loss_bbox``, ``acc``."""
        check_data_samples(batch_inputs, batch_data_samples, need_gt=True)
        if self.train_cfg is None:
            raise ValueError(f'{type(self).__name__}.loss needs train_cfg (rpn, rpn_proposal, rcnn); '
                             'build the model with the train_cfg of the config')
        x = self.extract_feat(batch_inputs)
        batch_data_samples = self.head_samples(batch_data_samples)
        losses = dict()
        if self.with_rpn:
            proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg['rpn'])
            rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
                x, objectness_samples(batch_data_samples), proposal_cfg=proposal_cfg)
            # RPNHead names its losses loss_rpn_*; other heads' losses get MMDetection's 'rpn_' prefix.
            for key in list(rpn_losses):
                if 'loss' in key and 'rpn' not in key:
                    rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
            losses.update(rpn_losses)
        else:
            rpn_results_list = self._proposals(x, batch_data_samples)
        losses.update(self.roi_head.loss(x, rpn_results_list, batch_data_samples))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples: List[DetDataSample],
                rescale: bool = True) -> List[DetDataSample]:
        """Detections written to each sample's ``pred_instances`` (bboxes (K, 4), scores, labels);
        in original-image pixels when ``rescale``."""
        check_data_samples(batch_inputs, batch_data_samples, need_gt=False)
        x = self.extract_feat(batch_inputs)
        head_samples = self.head_samples(batch_data_samples)
        rpn_results_list = self._proposals(x, head_samples)
        results_list = self.roi_head.predict(x, rpn_results_list, head_samples, rescale=rescale)
        for sample, results in zip(batch_data_samples, results_list):
            sample.pred_instances = results
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples: Optional[List[DetDataSample]] = None) -> tuple:
        """Raw outputs ``((cls_score (R, C+1), bbox_pred (R, 4C)),)`` for all proposals (as MMDetection).

        Without data samples every image is taken to fill the whole input tensor.
        """
        if batch_data_samples is None:
            h, w = batch_inputs.shape[-2:]
            batch_data_samples = [DetDataSample(metainfo=dict(img_shape=(h, w), scale_factor=(1.0, 1.0)))
                                  for _ in range(batch_inputs.size(0))]
        x = self.extract_feat(batch_inputs)
        batch_data_samples = self.head_samples(batch_data_samples)
        rpn_results_list = self._proposals(x, batch_data_samples)
        return (self.roi_head.forward(x, rpn_results_list, batch_data_samples),)

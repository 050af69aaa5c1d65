"""``TwoStageDetector``: backbone -> neck -> RPN head -> RoI head (MMDetection 3.x semantics).

``forward(inputs, data_samples, mode)`` dispatches to ``loss`` (dict of losses), ``predict``
(data samples with ``pred_instances`` in original-image pixels) or ``_forward`` (raw head outputs).
"""
import copy
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ...structures import DetDataSample


def build_data_preprocessor(cfg: Union[dict, torch.nn.Module, None]):
    """Build the data preprocessor from *this* package's registry.

    mmengine's ``BaseModel`` builds it from its own root registry, which only finds
    ``DetDataPreprocessor`` when ``default_scope='rcnn_plugins'`` is set; building it here makes
    ``dict(type='rcnn_plugins.FasterRCNN', ...)`` work from mmengine's root without a default scope.
    """
    if isinstance(cfg, dict):
        return MODELS.build(cfg)
    return cfg


def check_data_samples(batch_inputs: Tensor, batch_data_samples, need_gt: bool) -> None:
    """Clear errors for the usual mistakes in what reaches ``loss`` / ``predict``."""
    if not isinstance(batch_inputs, Tensor) or batch_inputs.dim() != 4:
        raise TypeError('inputs must be a (B, 3, H, W) float tensor (run the data preprocessor first), got '
                        f'{type(batch_inputs).__name__} of shape {getattr(batch_inputs, "shape", None)}')
    if batch_data_samples is None or len(batch_data_samples) != batch_inputs.size(0):
        n = None if batch_data_samples is None else len(batch_data_samples)
        raise ValueError(f'got {batch_inputs.size(0)} images but {n} data samples; give one DetDataSample per image')
    for i, s in enumerate(batch_data_samples):
        if 'img_shape' not in s.metainfo:
            raise ValueError(f"data sample {i} has no 'img_shape' in metainfo; set it to the (h, w) of the "
                             'resized image (the data preprocessor / Resize transform normally does)')
        if need_gt and 'gt_instances' not in s:
            raise ValueError(f'data sample {i} has no gt_instances; training needs bboxes (G, 4) and labels (G,)')


def objectness_samples(batch_data_samples: Sequence[DetDataSample]) -> List[DetDataSample]:
    """Shallow copies of the samples whose gt labels are all 0: an RPN learns object vs background."""
    out = []
    for s in batch_data_samples:
        gt = s.gt_instances
        new = DetDataSample(metainfo=s.metainfo,
                            gt_instances=InstanceData(bboxes=gt.bboxes, labels=torch.zeros_like(gt.labels)))
        if 'ignored_instances' in s:
            new.ignored_instances = s.ignored_instances
        out.append(new)
    return out


@MODELS.register_module()
class TwoStageDetector(BaseModel):
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
        super().__init__(data_preprocessor=build_data_preprocessor(data_preprocessor), init_cfg=init_cfg)
        if roi_head is None:
            raise ValueError(f'{type(self).__name__} needs a roi_head config (for proposals only use RPN)')
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        if rpn_head is not None:
            if test_cfg is None or 'rpn' not in test_cfg:
                raise ValueError(f'{type(self).__name__}: test_cfg.rpn is required with an rpn_head '
                                 '(nms_pre, max_per_img, nms, min_bbox_size)')
            rpn_cfg = copy.deepcopy(rpn_head)
            if rpn_cfg.get('num_classes', 1) != 1:
                warnings.warn(f"rpn_head.num_classes should be 1 in an RPN, got {rpn_cfg['num_classes']}; "
                              'using 1 (set rpn_head.num_classes=1 in your config)')
            rpn_cfg.update(num_classes=1, train_cfg=train_cfg['rpn'] if train_cfg is not None else None,
                           test_cfg=test_cfg['rpn'])
            self.rpn_head = MODELS.build(rpn_cfg)
        roi_cfg = copy.deepcopy(roi_head)
        roi_cfg.update(train_cfg=train_cfg['rcnn'] if train_cfg is not None else None,
                       test_cfg=test_cfg['rcnn'] if test_cfg is not None else None)
        self.roi_head = MODELS.build(roi_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_neck(self) -> bool:
        return hasattr(self, 'neck') and self.neck is not None

    @property
    def with_rpn(self) -> bool:
        return hasattr(self, 'rpn_head') and self.rpn_head is not None

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> feature pyramid, per level (B, C, H_l, W_l)."""
        x = self.backbone(batch_inputs)
        if self.with_neck:
            x = self.neck(x)
        return x

    def forward(self, inputs: Tensor, data_samples: Optional[List[DetDataSample]] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"Invalid mode {mode!r}; use 'loss', 'predict' or 'tensor'")

    def _proposals(self, x, batch_data_samples) -> List[InstanceData]:
        """Precomputed ``proposals`` of the samples when they have them, else RPN proposals
        (resized-image pixels)."""
        if all('proposals' in s for s in batch_data_samples):
            return [s.proposals for s in batch_data_samples]
        if not self.with_rpn:
            raise ValueError('a detector without rpn_head needs data_samples with precomputed proposals')
        return self.rpn_head.predict(x, batch_data_samples, rescale=False)

    def loss(self, batch_inputs: Tensor, batch_data_samples: List[DetDataSample]) -> dict:
        """Losses: ``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_cls``, ``loss_bbox``, ``acc``."""
        check_data_samples(batch_inputs, batch_data_samples, need_gt=True)
        if self.train_cfg is None:
            raise ValueError(f'{type(self).__name__}.loss needs train_cfg (rpn, rpn_proposal, rcnn); '
                             'build the model with the train_cfg of the config')
        x = self.extract_feat(batch_inputs)
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
        rpn_results_list = self._proposals(x, batch_data_samples)
        results_list = self.roi_head.predict(x, rpn_results_list, batch_data_samples, rescale=rescale)
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
        rpn_results_list = self._proposals(x, batch_data_samples)
        return (self.roi_head.forward(x, rpn_results_list, batch_data_samples),)

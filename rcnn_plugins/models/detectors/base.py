"""``BaseDetector``: what every detector here shares (mmengine ``BaseModel`` plumbing).

- ``forward(inputs, data_samples, mode)`` dispatches to ``loss`` (dict of losses), ``predict``
  (data samples with ``pred_instances``) or ``_forward`` (raw head outputs), as mmengine's Runner
  and MMDetection's detectors expect;
- ``extract_feat``: backbone, then the neck if there is one;
- the data preprocessor is built from rcnn_plugins' registry (see ``build_data_preprocessor``);
- helpers both detectors use: input checks, the RPN head's config, objectness-only samples.
"""
import copy
import warnings
from typing import List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel, Sequential
from torch import Tensor

from ...registry import MODELS, build_or_use
from ...structures import DetDataSample
from ..layers.nms import check_nms_cfgs


def build_data_preprocessor(cfg: Union[dict, torch.nn.Module, None]):
    """Build the data preprocessor from *this* package's registry.

    mmengine's ``BaseModel`` builds it from its own root registry, which only finds
    ``DetDataPreprocessor`` when ``default_scope='rcnn_plugins'`` is set; building it here makes
    ``dict(type='rcnn_plugins.FasterRCNN', ...)`` work from mmengine's root without a default scope.
    """
    if isinstance(cfg, dict):
        return MODELS.build(cfg)
    return cfg


def check_train_test_cfgs(train_cfg: Optional[dict], test_cfg: Optional[dict]) -> None:
    """Resolve at build time what the heads only read at run time: every ``nms`` config inside
    ``train_cfg`` / ``test_cfg`` (type, keys). Without this a bad NMS type in ``test_cfg.rcnn``
    surfaced at the first evaluation, after a whole epoch of training."""
    check_nms_cfgs(train_cfg, 'train_cfg')
    check_nms_cfgs(test_cfg, 'test_cfg')


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


def rpn_head_config(rpn_head: dict, train_cfg: Optional[dict], test_cfg: Optional[dict], owner: str) -> dict:
    """The RPN head's config with ``num_classes=1`` and its ``train_cfg.rpn`` / ``test_cfg.rpn``.

    A head passed as a built module is used as it is (it carries its own train / test config).
    """
    if not isinstance(rpn_head, dict):
        return rpn_head
    if test_cfg is None or 'rpn' not in test_cfg:
        raise ValueError(f'{owner}: test_cfg.rpn is required with an rpn_head '
                         '(nms_pre, max_per_img, nms, min_bbox_size)')
    cfg = copy.deepcopy(rpn_head)
    if cfg.get('num_classes', 1) != 1:
        warnings.warn(f"rpn_head.num_classes should be 1 in an RPN, got {cfg['num_classes']}; "
                      'using 1 (set rpn_head.num_classes=1 in your config)')
    cfg.update(num_classes=1, train_cfg=train_cfg['rpn'] if train_cfg is not None else None,
               test_cfg=test_cfg['rpn'])
    return cfg



def objectness_samples(batch_data_samples: List[DetDataSample]) -> List[DetDataSample]:
    """Copies of the samples whose gt labels are all 0 (object), for the RPN head's loss.

    An RPN predicts objectness only; as MMDetection's two-stage detector does, every gt box is
    relabelled here so any dense head (``RPNHead``, ``FCOSHead`` with ``num_classes=1``, ...)
    trains as an RPN. The callers' samples are left untouched (the RoI head needs the real labels).
    """
    out = []
    for sample in batch_data_samples:
        # Shallow copies (mmengine's clone): new containers, the same tensors, so relabelling
        # does not reach the caller's gt_instances.
        copy_ = sample.clone()
        if 'gt_instances' in copy_:
            gt = copy_.gt_instances.clone()
            gt.labels = torch.zeros_like(gt.labels)
            copy_.gt_instances = gt
        out.append(copy_)
    return out

class BaseDetector(BaseModel):
    """Backbone (+ optional neck) and the mode dispatch; subclasses add heads, ``loss``,
    ``predict`` and ``_forward``."""

    def __init__(self, backbone: dict, neck: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(data_preprocessor=build_data_preprocessor(data_preprocessor), init_cfg=init_cfg)
        self.backbone = build_or_use(MODELS, backbone)
        if isinstance(neck, (list, tuple)):
            # Several necks run in order (Libra R-CNN's FPN then BFP): mmengine's Sequential, keys
            # neck.0.*, neck.1.*, as MMDetection builds a list of neck configs.
            self.neck = Sequential(*[build_or_use(MODELS, n) for n in neck])
        elif neck is not None:
            self.neck = build_or_use(MODELS, neck)

    @property
    def with_neck(self) -> bool:
        return hasattr(self, 'neck') and self.neck is not None

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> feature pyramid, per level (B, C, H_l, W_l)."""
        x = self.backbone(batch_inputs)
        if self.with_neck:
            x = self.neck(x)
        return x

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """mmengine's ``test_step``, one forward pass per group of images of one padded size.

        A batch is padded to its largest image, and padding changes the features (and so the
        scores) of the smaller images: images whose own padded size (to ``pad_size_divisor``)
        differs run separately, so every image gets the predictions it gets in a batch of one.
        Results come back in input order.
        """
        inputs = data.get('inputs') if isinstance(data, dict) else None
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            return super().test_step(data)
        divisor = getattr(self.data_preprocessor, 'pad_size_divisor', 1) or 1
        keys = [(-(-x.shape[-2] // divisor), -(-x.shape[-1] // divisor)) for x in inputs]
        groups: dict = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        if len(groups) == 1:
            return super().test_step(data)
        n = len(inputs)
        results: list = [None] * n
        for idx in groups.values():
            part = {k: [v[i] for i in idx] if isinstance(v, (list, tuple)) and len(v) == n else v
                    for k, v in data.items()}
            for i, result in zip(idx, super().test_step(part)):
                results[i] = result
        return results

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """As :meth:`test_step` (validation predicts the same way)."""
        return self.test_step(data)

    def forward(self, inputs: Tensor, data_samples: Optional[List[DetDataSample]] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"Invalid mode {mode!r}; use 'loss', 'predict' or 'tensor'")

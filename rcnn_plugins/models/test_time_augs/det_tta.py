"""``DetTTAModel``: MMDetection's test-time augmentation wrapper (``tta_model`` in a config).

mmengine's ``BaseTTAModel.test_step`` runs the wrapped detector on every view that mmcv's
``TestTimeAug`` made of an image (e.g. flipped / not flipped, several scales). The detector
already returns each view's boxes in original-image pixels (``rescale=True`` undoes the resize);
here the flipped views are flipped back in the original image (``ori_shape``), all views' boxes
are concatenated and merged by class-wise NMS (``tta_cfg.nms``: ``'nms'`` or ``'soft_nms'``),
keeping the best ``tta_cfg.max_per_img``.
"""
from typing import List, Optional

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS, build_or_use
from ..layers.nms import batched_nms, check_nms_cfg


def flip_boxes(boxes: Tensor, img_shape, direction: str) -> Tensor:
    """(N, 4) xyxy boxes of an (h, w) image flipped ``'horizontal'`` / ``'vertical'`` / ``'diagonal'``;
    flipping twice gives the input back exactly."""
    h, w = img_shape[:2]
    x1, y1, x2, y2 = boxes.unbind(-1)
    if direction == 'horizontal':
        return torch.stack([w - x2, y1, w - x1, y2], -1)
    if direction == 'vertical':
        return torch.stack([x1, h - y2, x2, h - y1], -1)
    if direction == 'diagonal':
        return torch.stack([w - x2, h - y2, w - x1, h - y1], -1)
    raise ValueError(f"flip direction must be 'horizontal', 'vertical' or 'diagonal', got {direction!r}")


@MODELS.register_module()
class DetTTAModel(BaseTTAModel):
    """Merge the views' detections of each image.

    Args:
        tta_cfg: ``dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)`` (MMDetection's
            keys); checked when built.
        module: the detector (config or module), as mmengine's ``BaseTTAModel``; a config is built
            from rcnn_plugins' registry whatever the default scope.
        data_preprocessor: overrides the detector's, as mmengine's ``BaseTTAModel``.
    """

    def __init__(self, tta_cfg: Optional[dict] = None, module=None, data_preprocessor=None, **kwargs) -> None:
        if module is None:
            raise ValueError("DetTTAModel needs module=<the detector config> (tools/test.py --tta sets it from "
                             "cfg.model)")
        if isinstance(module, dict) and data_preprocessor is not None:
            module = dict(module, data_preprocessor=data_preprocessor)
        super().__init__(module=build_or_use(MODELS, module), **kwargs)
        tta_cfg = dict(tta_cfg or dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
        if 'nms' not in tta_cfg or 'max_per_img' not in tta_cfg:
            raise ValueError(f"DetTTAModel: tta_cfg needs 'nms' and 'max_per_img', got {tta_cfg!r}")
        check_nms_cfg(tta_cfg['nms'], 'tta_model.tta_cfg.nms')
        self.tta_cfg = tta_cfg

    def merge_preds(self, data_samples_list: List[list]) -> list:
        """``data_samples_list[i]``: the views (DetDataSamples with ``pred_instances``) of image i."""
        return [self._merge_single_sample(views) for views in data_samples_list]

    def _merge_single_sample(self, views: list):
        boxes, scores, labels = [], [], []
        for view in views:
            pred = view.pred_instances
            if 'masks' in pred:
                raise NotImplementedError('DetTTAModel merges boxes only (no instance masks here)')
            b = pred.bboxes
            if view.metainfo.get('flip', False):
                b = flip_boxes(b, view.metainfo['ori_shape'], view.metainfo['flip_direction'])
            boxes.append(b)
            scores.append(pred.scores)
            labels.append(pred.labels)
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        merged = views[0]
        if boxes.numel() == 0:
            return merged
        dets, keep = batched_nms(boxes, scores, labels, self.tta_cfg['nms'])
        max_per_img = self.tta_cfg['max_per_img']
        dets, keep = dets[:max_per_img], keep[:max_per_img]
        merged.pred_instances = InstanceData(bboxes=dets[:, :4], scores=dets[:, 4], labels=labels[keep])
        return merged

"""Weights of torchvision's ``fasterrcnn_resnet50_fpn`` to and from rcnn_plugins' Faster R-CNN.

The two architectures match layer for layer; only names and the class layout differ:

=========================================  ==========================================
torchvision                                 rcnn_plugins (MMDetection 3.x names)
=========================================  ==========================================
``backbone.body.<resnet key>``              ``backbone.<resnet key>``
``backbone.fpn.inner_blocks.{i}[.0].*``     ``neck.lateral_convs.{i}.conv.*``
``backbone.fpn.layer_blocks.{i}[.0].*``     ``neck.fpn_convs.{i}.conv.*``
``rpn.head.conv[.0.0].*``                   ``rpn_head.rpn_conv.*``
``rpn.head.cls_logits.*``                   ``rpn_head.rpn_cls.*``
``rpn.head.bbox_pred.*``                    ``rpn_head.rpn_reg.*``
``roi_heads.box_head.fc6.* / fc7.*``        ``roi_head.bbox_head.shared_fcs.0.* / 1.*``
``roi_heads.box_predictor.cls_score.*``     ``roi_head.bbox_head.fc_cls.*``: background row 0 moved last
``roi_heads.box_predictor.bbox_pred.*``     ``roi_head.bbox_head.fc_reg.*``: background rows 0-3 dropped
=========================================  ==========================================

(The bracketed parts are in files written by torchvision >= 0.13; older files, such as the
released COCO weights, lack them; both are read.) So torchvision label ``k`` is our label ``k - 1``.
The background box regressor is never used by either model (torchvision drops it at inference and
trains only foreground rows); it is kept in the checkpoint's ``meta`` so that converting back
gives the original state dict exactly. Pretrained torchvision files (FrozenBatchNorm2d) have no
``num_batches_tracked``; zeros are added, as our BatchNorm layers have that buffer, and dropped
again going back (the released files' layout, which loads into FrozenBatchNorm2d and, filled in by
``nn.BatchNorm2d``'s loader, into ``fasterrcnn_resnet50_fpn(weights=None)`` alike).
"""
import os
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from ...fileio import atomic_write, load_checkpoint_file

#: torchvision prefix -> ours, for the one-to-one tensors (after normalising FPN / RPN conv names).
_PREFIXES = (
    ('backbone.body.', 'backbone.'),
    ('rpn.head.conv.', 'rpn_head.rpn_conv.'),
    ('rpn.head.cls_logits.', 'rpn_head.rpn_cls.'),
    ('rpn.head.bbox_pred.', 'rpn_head.rpn_reg.'),
    ('roi_heads.box_head.fc6.', 'roi_head.bbox_head.shared_fcs.0.'),
    ('roi_heads.box_head.fc7.', 'roi_head.bbox_head.shared_fcs.1.'),
)
_FPN = {'inner_blocks': 'lateral_convs', 'layer_blocks': 'fpn_convs'}
_CLS = 'roi_heads.box_predictor.cls_score.'
_REG = 'roi_heads.box_predictor.bbox_pred.'
_OURS_CLS = 'roi_head.bbox_head.fc_cls.'
_OURS_REG = 'roi_head.bbox_head.fc_reg.'
_PARAMS = ('weight', 'bias')
_BN_BUFFERS = ('running_mean', 'running_var')


class ConversionError(ValueError):
    """A state dict that is not the Faster R-CNN R50-FPN the converter maps."""


def _torchvision_key_to_ours(key: str) -> Optional[str]:
    """Our name of a torchvision key that maps one to one, else None."""
    m = re.fullmatch(r'backbone\.fpn\.(inner_blocks|layer_blocks)\.(\d+)\.(?:0\.)?(weight|bias)', key)
    if m:
        return f'neck.{_FPN[m.group(1)]}.{m.group(2)}.conv.{m.group(3)}'
    key = re.sub(r'^rpn\.head\.conv\.0\.0\.', 'rpn.head.conv.', key)
    for src, dst in _PREFIXES:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def _ours_key_to_torchvision(key: str) -> Optional[str]:
    """torchvision's (>= 0.13) name of one of our one-to-one keys, else None."""
    m = re.fullmatch(r'neck\.(lateral_convs|fpn_convs)\.(\d+)\.conv\.(weight|bias)', key)
    if m:
        block = {v: k for k, v in _FPN.items()}[m.group(1)]
        return f'backbone.fpn.{block}.{m.group(2)}.0.{m.group(3)}'
    if key.startswith('rpn_head.rpn_conv.'):
        return 'rpn.head.conv.0.0.' + key[len('rpn_head.rpn_conv.'):]
    for src, dst in _PREFIXES[:1] + _PREFIXES[2:]:
        if key.startswith(dst):
            return src + key[len(dst):]
    return None


def torchvision_to_rcnn(tv_state: Dict[str, Tensor], src: str = 'the state dict') -> Tuple[Dict[str, Tensor], dict]:
    """Map a torchvision ``fasterrcnn_resnet50_fpn`` state dict to ours.

    Args:
        tv_state: torchvision keys -> tensors; ``roi_heads.box_predictor.cls_score.weight`` is
            (K + 1, 1024) with background at row 0 (K = 90 for COCO).
        src: name of the source in error messages (the file).

    Returns:
        (state_dict with our keys: ``fc_cls`` (K + 1, 1024) background last, ``fc_reg`` (4K, 1024),
        meta ``dict(num_classes=K, background_bbox_pred=dict(weight (4, 1024), bias (4,)))``).
    """
    missing = [k for k in (_CLS + 'weight', _CLS + 'bias', _REG + 'weight', _REG + 'bias') if k not in tv_state]
    if missing:
        raise ConversionError(f'{src}: not a torchvision Faster R-CNN state dict: no {missing}. Expected the '
                              'state_dict() of torchvision.models.detection.fasterrcnn_resnet50_fpn.')
    out, unknown = OrderedDict(), []
    for key, value in tv_state.items():
        if key.startswith(('roi_heads.box_predictor.',)):
            continue
        ours = _torchvision_key_to_ours(key)
        if ours is None:
            unknown.append(key)
            continue
        out[ours] = value
        if key.startswith('backbone.body.') and key.endswith('.running_var'):
            nbt = ours[:-len('running_var')] + 'num_batches_tracked'
            out.setdefault(nbt, tv_state.get(key[:-len('running_var')] + 'num_batches_tracked',
                                             torch.tensor(0, dtype=torch.long)))
    if unknown:
        raise ConversionError(f'{src}: {len(unknown)} keys that a fasterrcnn_resnet50_fpn does not have, e.g. '
                              f'{unknown[:5]} (a Mask / Keypoint R-CNN or another backbone?). Only '
                              'fasterrcnn_resnet50_fpn weights convert to configs/faster_rcnn/'
                              'faster-rcnn_r50_fpn_torchvision.py.')
    cls_w, cls_b = tv_state[_CLS + 'weight'], tv_state[_CLS + 'bias']
    reg_w, reg_b = tv_state[_REG + 'weight'], tv_state[_REG + 'bias']
    num_classes = cls_w.size(0) - 1
    if reg_w.size(0) != 4 * (num_classes + 1):
        raise ConversionError(f'{src}: bbox_pred has {reg_w.size(0)} rows, expected 4 x {num_classes + 1} '
                              f'classes for cls_score of {cls_w.size(0)} rows (class-specific boxes).')
    # Background: torchvision row 0, ours the last row.
    out[_OURS_CLS + 'weight'] = torch.cat([cls_w[1:], cls_w[:1]])
    out[_OURS_CLS + 'bias'] = torch.cat([cls_b[1:], cls_b[:1]])
    out[_OURS_REG + 'weight'] = reg_w[4:]
    out[_OURS_REG + 'bias'] = reg_b[4:]
    meta = dict(num_classes=num_classes,
                background_bbox_pred=dict(weight=reg_w[:4].clone(), bias=reg_b[:4].clone()))
    return out, meta


def rcnn_to_torchvision(state: Dict[str, Tensor], background_bbox_pred: Optional[dict] = None,
                        src: str = 'the state dict') -> Dict[str, Tensor]:
    """Map our Faster R-CNN R50-FPN state dict (torchvision config) back to torchvision's keys.

    Args:
        state: our keys -> tensors (``fc_cls`` (K + 1, 1024) background last, ``fc_reg`` (4K, 1024)).
        background_bbox_pred: torchvision's background regressor rows ``dict(weight (4, 1024),
            bias (4,))`` as :func:`torchvision_to_rcnn` kept them; None: zeros (unused by torchvision).
        src: name of the source in error messages.

    Returns:
        a state dict that ``fasterrcnn_resnet50_fpn(weights=None, num_classes=K + 1)`` loads strictly.
    """
    for key in (_OURS_CLS + 'weight', _OURS_REG + 'weight'):
        if key not in state:
            raise ConversionError(f'{src}: no {key!r}; expected a checkpoint of configs/faster_rcnn/'
                                  'faster-rcnn_r50_fpn_torchvision.py (or another R50-FPN Faster R-CNN).')
    cls_w, cls_b = state[_OURS_CLS + 'weight'], state[_OURS_CLS + 'bias']
    reg_w, reg_b = state[_OURS_REG + 'weight'], state[_OURS_REG + 'bias']
    num_classes = cls_w.size(0) - 1
    if reg_w.size(0) != 4 * num_classes:
        raise ConversionError(f'{src}: fc_reg has {reg_w.size(0)} rows for {num_classes} classes; torchvision '
                              'needs class-specific boxes (reg_class_agnostic=False).')
    out, unknown = OrderedDict(), []
    for key, value in state.items():
        if key.startswith((_OURS_CLS, _OURS_REG)) or key.endswith('.num_batches_tracked'):
            continue
        tv = _ours_key_to_torchvision(key)
        if tv is None:
            unknown.append(key)
        else:
            out[tv] = value
    if unknown:
        raise ConversionError(f'{src}: {len(unknown)} keys torchvision\'s fasterrcnn_resnet50_fpn has no place for, '
                              f'e.g. {unknown[:5]}; only the R50-FPN Faster R-CNN of '
                              'faster-rcnn_r50_fpn_torchvision.py converts.')
    if background_bbox_pred is None:
        background_bbox_pred = dict(weight=reg_w.new_zeros(4, reg_w.size(1)), bias=reg_b.new_zeros(4))
    out[_CLS + 'weight'] = torch.cat([cls_w[-1:], cls_w[:-1]])
    out[_CLS + 'bias'] = torch.cat([cls_b[-1:], cls_b[:-1]])
    out[_REG + 'weight'] = torch.cat([background_bbox_pred['weight'].to(reg_w), reg_w])
    out[_REG + 'bias'] = torch.cat([background_bbox_pred['bias'].to(reg_b), reg_b])
    return out


def _load(path: str) -> dict:
    """Read a checkpoint with the project's safe loader: plain state dicts and Runner
    checkpoints (message hub history, numpy metadata) load; files needing other pickle globals
    are refused unless the user opted in (``RCNN_PLUGINS_UNSAFE_LOAD=1``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    try:
        obj = load_checkpoint_file(path, map_location='cpu')
    except Exception as err:  # noqa: BLE001 - unreadable or refused: say which file and why
        raise ConversionError(f'{path}: cannot be read as a torch checkpoint: {err}') from None
    if not isinstance(obj, dict):
        raise ConversionError(f'{path}: holds a {type(obj).__name__}, expected a state dict (dict of tensors)')
    return obj


def coco_category_names(num_classes: int) -> Optional[Tuple[str, ...]]:
    """Our 90 class names (torchvision's COCO categories without background, 'N/A' included)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    names = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta['categories'][1:]
    return tuple(names) if len(names) == num_classes else None


def convert_torchvision_checkpoint(src: str, dst: str) -> dict:
    """Read a torchvision Faster R-CNN ``.pth`` (a state dict, or a reference-script checkpoint
    with ``'model'``) and write an rcnn_plugins checkpoint ``{'state_dict', 'meta'}`` to ``dst``.

    Returns the written meta (``num_classes``; ``dataset_meta.classes`` when they are COCO's 90).
    """
    obj = _load(src)
    tv_state = obj.get('model', obj.get('state_dict', obj))
    state, info = torchvision_to_rcnn(tv_state, src=src)
    meta = dict(converted_from=os.path.abspath(src), source='torchvision', num_classes=info['num_classes'],
                torchvision=dict(background_bbox_pred=info['background_bbox_pred']))
    names = coco_category_names(info['num_classes'])
    if names is not None:
        meta['dataset_meta'] = dict(classes=names)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with atomic_write(dst) as f:
        torch.save(dict(state_dict=state, meta=meta), f)
    return meta


def convert_to_torchvision_checkpoint(src: str, dst: str) -> int:
    """Read our checkpoint (Runner ``.pth`` or a converted one) and write torchvision's state dict
    to ``dst``; returns the number of torchvision classes (background included)."""
    obj = _load(src)
    state = obj.get('state_dict', obj)
    # A Runner checkpoint of a model wrapped in DDP / EMA has prefixed keys.
    state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in state.items())
    meta = obj.get('meta') or {}
    background = (meta.get('torchvision') or {}).get('background_bbox_pred')
    tv_state = rcnn_to_torchvision(state, background, src=src)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with atomic_write(dst) as f:
        torch.save(tv_state, f)
    return tv_state[_CLS + 'weight'].size(0)

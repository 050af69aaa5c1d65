"""What an exported detector needs around it: image -> input tensor, output boxes -> original pixels.

An exported graph starts at the normalised, padded tensor. ``preprocess_spec(cfg, shape)`` takes,
from a config, what turns an image into that tensor (the test pipeline's ``Resize``, the data
preprocessor's mean / std / channel order / padding) as a JSON-able dict that the exporter stores
in the exported file, so ``preprocess`` and ``postprocess`` need no config at run time:

    tensor, meta = preprocess('photo.jpg', spec)         # (1, 3, H, W) float32, dict
    boxes, scores, labels = session.run(...)             # pixels of the tensor
    result = postprocess(boxes, scores, labels, meta)    # pixels of photo.jpg

With a fixed export ``shape`` (H, W) the image is resized to fit inside it, aspect ratio kept
(factor ``min(H / h, W / w)``, with the config's resize backend), and padded to exactly (H, W);
without it the config's resize is used and the tensor is padded to ``pad_size_divisor``, as
``DetDataPreprocessor`` pads a batch of one.
"""
import copy
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..config_utils import get_test_pipeline_cfg
from ..registry import TRANSFORMS


def preprocess_spec(cfg, shape: Optional[Sequence[int]] = None) -> dict:
    """JSON-able preprocessing of a config (see the module docstring).

    Args:
        cfg: a loaded mmengine ``Config`` with ``model.data_preprocessor`` and a test pipeline.
        shape: (H, W) of a fixed-size export, or None (dynamic: the config's resize).
    """
    dp = cfg.model.get('data_preprocessor') or {}
    resizes = [dict(t) for t in get_test_pipeline_cfg(cfg, drop=()) if t.get('type') == 'Resize']
    if len(resizes) != 1:
        raise ValueError(f'preprocess_spec: the config\'s test pipeline needs exactly one Resize, found '
                         f'{len(resizes)}; the exported model expects resized images.')
    if shape is not None:
        h, w = (int(s) for s in shape)
        divisor = dp.get('pad_size_divisor', 1)
        if h % 32 or w % 32:
            raise ValueError(f'export shape {h}x{w}: height and width must be multiples of 32 (the FPN levels '
                             f'halve it 5 times; the config pads to {divisor})')
    mean, std = dp.get('mean'), dp.get('std')
    return dict(resize=resizes[0], shape=None if shape is None else [h, w],
                mean=None if mean is None else [float(m) for m in mean],
                std=None if std is None else [float(s) for s in std],
                bgr_to_rgb=bool(dp.get('bgr_to_rgb', False)), rgb_to_bgr=bool(dp.get('rgb_to_bgr', False)),
                pad_size_divisor=int(dp.get('pad_size_divisor', 1)), pad_value=float(dp.get('pad_value', 0)))


def _load(image: Union[str, np.ndarray]) -> np.ndarray:
    """A path (any format our ``LoadImageFromFile`` reads) or a BGR (H, W, 3) array -> BGR array."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'preprocess: an image array must be BGR (H, W, 3), got shape {image.shape}')
        return image
    results = TRANSFORMS.build(dict(type='LoadImageFromFile'))(dict(img_path=str(image)))
    return results['img']


def preprocess(image: Union[str, np.ndarray], spec: dict) -> Tuple[Tensor, dict]:
    """Image -> ((1, 3, H, W) float32 input of the exported model, meta).

    ``meta``: ``ori_shape`` (h, w) of the image, ``img_shape`` (h, w) after resizing (the part of
    the tensor that is image, not padding), ``scale_factor`` (w, h) resized / original.
    """
    img = _load(image)
    ori_shape = img.shape[:2]
    resize = copy.deepcopy(spec['resize'])
    # JSON turned the config's tuples into lists; mmcv's Resize wants tuples.
    resize = {k: tuple(v) if isinstance(v, list) else v for k, v in resize.items()}
    if spec['shape'] is not None:
        factor = min(spec['shape'][0] / ori_shape[0], spec['shape'][1] / ori_shape[1])
        resize.update(scale=None, scale_factor=(factor, factor), keep_ratio=False)
    results = TRANSFORMS.build(resize)(dict(img=img, img_shape=ori_shape, ori_shape=ori_shape))
    x = torch.from_numpy(np.ascontiguousarray(results['img'])).permute(2, 0, 1).float()
    if spec['bgr_to_rgb'] or spec['rgb_to_bgr']:
        x = x.flip(0)
    if spec['mean'] is not None:
        x = (x - x.new_tensor(spec['mean'])[:, None, None]) / x.new_tensor(spec['std'])[:, None, None]
    h, w = x.shape[-2:]
    if spec['shape'] is not None:
        out_h, out_w = spec['shape']
    else:
        d = spec['pad_size_divisor']
        out_h, out_w = math.ceil(h / d) * d, math.ceil(w / d) * d
    x = torch.nn.functional.pad(x, (0, out_w - w, 0, out_h - h), value=spec['pad_value'])
    meta = dict(ori_shape=tuple(ori_shape), img_shape=(h, w), scale_factor=tuple(results['scale_factor']))
    return x[None].contiguous(), meta


def postprocess(boxes, scores, labels, meta: dict, score_thr: float = 0.) -> dict:
    """Detections of the exported model (tensor pixels) -> original-image pixels.

    Boxes are divided by ``scale_factor`` and clipped to the original image; detections with
    score <= ``score_thr`` are dropped. Returns numpy ``bboxes`` (K, 4), ``scores`` (K,), ``labels`` (K,).
    """
    boxes, scores, labels = (np.asarray(a) for a in (boxes, scores, labels))
    keep = scores > score_thr
    sw, sh = meta['scale_factor']
    boxes = boxes[keep] / np.array([sw, sh, sw, sh], dtype=np.float32)
    h, w = meta['ori_shape']
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return dict(bboxes=boxes.astype(np.float32), scores=scores[keep], labels=labels[keep].astype(np.int64))

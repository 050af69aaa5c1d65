"""``RoIAlign`` and ``RoIPool``: modules over ``torchvision.ops.roi_align`` / ``roi_pool``.

Named and parametrised as mmcv's ops (which mmcv-lite lacks) so an MMDetection config's
``roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)`` builds here from ``MODELS``.
RoIs are (R, 5) ``[batch_index, x1, y1, x2, y2]`` in input-image pixels; ``spatial_scale``
(1 / feature stride) maps them onto the feature map.

``RoIAlign`` in CPU training uses torchvision's forward with a vectorised backward
(``roi_align_cpu.py``: 4-5x faster than torchvision's serial CPU loop, same gradient up to float
summation order); inference, tracing and GPUs use torchvision's op as it is.
"""
from typing import Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.utils import _pair
from torchvision.ops import roi_align, roi_pool

from rcnn_plugins.registry import MODELS
from .roi_align_cpu import roi_align_cpu_train, use_vectorised_backward


def _check_rois(input: Tensor, rois: Tensor, owner: str) -> Tensor:
    if input.dim() != 4 or rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(f'{owner}: need input (B, C, H, W) and rois (R, 5) [batch_index, x1, y1, x2, y2], '
                         f'got {tuple(input.shape)} and {tuple(rois.shape)}')
    # torchvision needs both in one dtype. Under autocast its roi_align casts both to float32
    # itself, so the rois stay float32 there: in bf16 (8 mantissa bits) a coordinate near 1000 px
    # would be rounded to a multiple of 8 px. A model converted to half precision gets half rois.
    if torch.is_autocast_enabled(input.device.type):
        return rois
    return rois.to(input.dtype)


@MODELS.register_module()
class RoIAlign(nn.Module):
    """RoIAlign (Mask R-CNN): bilinear samples averaged per output bin.

    Args:
        output_size: (h, w) or an int for a square output.
        spatial_scale: feature-map pixels per input pixel (1 / stride).
        sampling_ratio: samples per bin side; 0 = adaptive, ceil(roi size / output size).
        pool_mode: only 'avg' (torchvision has no max-mode RoIAlign).
        aligned: shift by -0.5 pixel so a box's corners sit on pixel corners (Detectron2 / MMDetection
            default); False reproduces the original, half-pixel-misaligned op.
        use_torchvision: accepted for MMDetection configs (mmcv's switch between its own kernel and
            torchvision's); both values run torchvision's op here, so the result is the same.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, pool_mode: str = 'avg', aligned: bool = True,
                 use_torchvision: bool = False) -> None:
        super().__init__()
        self.use_torchvision = use_torchvision
        if pool_mode != 'avg':
            raise NotImplementedError(f"RoIAlign: pool_mode={pool_mode!r} is not available: torchvision only "
                                      "has average RoIAlign; use pool_mode='avg'")
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pool_mode = pool_mode
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """input (B, C, H, W), rois (R, 5) -> (R, C, out_h, out_w)."""
        rois = _check_rois(input, rois, 'RoIAlign')
        if use_vectorised_backward(input):  # CPU training: same forward, a faster backward
            return roi_align_cpu_train(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio,
                                       self.aligned)
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, pool_mode={self.pool_mode!r}, aligned={self.aligned}')


@MODELS.register_module()
class RoIPool(nn.Module):
    """RoIPool (Fast R-CNN): max over each output bin, quantised to feature-map cells.

    Args:
        output_size: (h, w) or an int.
        spatial_scale: feature-map pixels per input pixel (1 / stride).
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """input (B, C, H, W), rois (R, 5) -> (R, C, out_h, out_w)."""
        rois = _check_rois(input, rois, 'RoIPool')
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}, spatial_scale={self.spatial_scale}'

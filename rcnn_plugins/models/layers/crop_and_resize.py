"""``CropAndResize``: Luminoth's RoI pooling, TensorFlow ``tf.image.crop_and_resize`` then max-pooling.

Each RoI's crop of the feature map is bilinearly resampled to ``crop_size`` x ``crop_size`` points
and max-pooled down to ``output_size`` (Luminoth: 14x14 then 2x2 max-pool to 7x7). The sample
points are TensorFlow's: box corners normalised by the image size (``y / image_h``; the image size
here is the feature map's times its stride, i.e. ``H / spatial_scale``) and, for crop row ``i``,

    in_y = y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (crop_h - 1)      (crop_h > 1)
    in_y = (y1 + y2) / 2 * (H - 1)                                   (crop_h == 1)

(columns alike), sampled bilinearly between the four neighbouring cells. A sample row or column
outside ``[0, H - 1]`` / ``[0, W - 1]`` is 0 (TF's ``extrapolation_value``), with no blending
towards the border. This is ``grid_sample(align_corners=True)`` (which puts grid -1 / +1 on the
centres of the first / last cells) masked to zero outside, vectorised over RoIs; a plain
``padding_mode='zeros'`` would blend the last cell with 0 up to one cell beyond the map instead.
"""
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from rcnn_plugins.registry import MODELS


def crop_and_resize(input: Tensor, boxes: Tensor, box_indices: Tensor, crop_size: Tuple[int, int]) -> Tensor:
    """TensorFlow's ``crop_and_resize`` on NCHW features, differentiable w.r.t. ``input``.

    Args:
        input: (B, C, H, W) feature maps.
        boxes: (R, 4) ``[y1, x1, y2, x2]`` normalised as TF's: ``in_y = y * (H - 1)``, so 0 / 1 are the
            centres of the first / last cell rows; y2 < y1 flips the crop.
        box_indices: (R,) long, the image of each box.
        crop_size: (crop_h, crop_w) sample points per box.

    Returns:
        (R, C, crop_h, crop_w) in ``input``'s dtype; zero where a sample row / column is outside the map.
    """
    num_rois = boxes.size(0)
    _, channels, height, width = input.shape
    crop_h, crop_w = crop_size
    # Sample coordinates in at least float32 (half precision would misplace them by whole cells on
    # large maps); the grid is cast to the features' dtype only for grid_sample.
    boxes = boxes.to(torch.float64 if input.dtype == torch.float64 else torch.float32)
    in_y = _sample_coords(boxes[:, 0], boxes[:, 2], height, crop_h)  # (R, crop_h), in cells
    in_x = _sample_coords(boxes[:, 1], boxes[:, 3], width, crop_w)  # (R, crop_w)
    inside = (((in_y >= 0) & (in_y <= height - 1))[:, :, None]
              & ((in_x >= 0) & (in_x <= width - 1))[:, None, :])  # (R, crop_h, crop_w)
    # align_corners=True: grid -1 / +1 are the centres of cells 0 / size - 1.
    gy = in_y * (2 / max(height - 1, 1)) - 1
    gx = in_x * (2 / max(width - 1, 1)) - 1
    grid = torch.stack([gx[:, None, :].expand(-1, crop_h, -1), gy[:, :, None].expand(-1, -1, crop_w)], dim=-1)
    grid = grid.to(input.dtype)
    out = input.new_zeros(num_rois, channels, crop_h, crop_w)
    if num_rois == 0:
        return out
    # One grid_sample per image over all its boxes (stacked along the output height); looping over
    # the few images avoids copying the feature map once per box.
    for b in torch.unique(box_indices).tolist():
        inds = (box_indices == b).nonzero().squeeze(1)
        g = grid[inds].reshape(1, inds.numel() * crop_h, crop_w, 2)
        sampled = F.grid_sample(input[b:b + 1], g, mode='bilinear', padding_mode='zeros', align_corners=True)
        sampled = sampled.reshape(channels, inds.numel(), crop_h, crop_w).transpose(0, 1)
        out = out.index_copy(0, inds, sampled.to(out.dtype))
    return out * inside[:, None].to(out.dtype)


def _sample_coords(lo: Tensor, hi: Tensor, size: int, num: int) -> Tensor:
    """(R,) normalised box edges -> (R, num) sample coordinates in cells (TF's formula)."""
    if num == 1:
        return ((lo + hi) * 0.5 * (size - 1))[:, None]
    steps = torch.arange(num, device=lo.device, dtype=lo.dtype)
    return lo[:, None] * (size - 1) + steps[None, :] * ((hi - lo) * (size - 1) / (num - 1))[:, None]


@MODELS.register_module()
class CropAndResize(nn.Module):
    """Crop-and-resize RoI pooling (Luminoth): bilinear ``crop_size`` samples, max-pooled to ``output_size``.

    Args:
        output_size: (h, w) or an int, the pooled size (7).
        spatial_scale: feature-map cells per input pixel (1 / stride); ``SingleRoIExtractor`` sets it.
        crop_size: samples per side before pooling, (h, w) or an int; each must be a multiple of
            ``output_size`` (the max-pool kernel is ``crop_size // output_size``). Default: twice
            ``output_size`` (14 -> 2x2 pool -> 7, Luminoth's).

    RoIs are (R, 5) ``[batch_index, x1, y1, x2, y2]`` in input-image pixels; box corners are normalised
    by the image size ``(H, W) / spatial_scale`` of the (B, C, H, W) feature map.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0,
                 crop_size: Union[int, Tuple[int, int], None] = None) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.crop_size = tuple(2 * s for s in self.output_size) if crop_size is None else _pair(crop_size)
        if any(c % o or c < o for c, o in zip(self.crop_size, self.output_size)):
            raise ValueError(f'CropAndResize: crop_size {self.crop_size} must be a multiple of output_size '
                             f'{self.output_size} (the max-pool kernel is crop_size // output_size)')
        self.kernel = tuple(c // o for c, o in zip(self.crop_size, self.output_size))
        self.spatial_scale = float(spatial_scale)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """input (B, C, H, W), rois (R, 5) -> (R, C, out_h, out_w)."""
        if input.dim() != 4 or rois.dim() != 2 or rois.size(1) != 5:
            raise ValueError('CropAndResize: need input (B, C, H, W) and rois (R, 5) [batch_index, x1, y1, x2, y2], '
                             f'got {tuple(input.shape)} and {tuple(rois.shape)}')
        height, width = input.shape[-2:]
        # Pixels -> fractions of the image (H / spatial_scale pixels high), as Luminoth's _get_bboxes.
        norm = rois.new_tensor([height, width, height, width]) / self.spatial_scale
        boxes = rois[:, [2, 1, 4, 3]] / norm
        crops = crop_and_resize(input, boxes, rois[:, 0].long(), self.crop_size)
        if self.kernel == (1, 1):
            return crops
        return F.max_pool2d(crops, kernel_size=self.kernel, stride=self.kernel)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, crop_size={self.crop_size}'

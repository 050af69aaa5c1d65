"""``MlvlPointGenerator``: the grid points an anchor-free head (FCOS) predicts from.

Level l has one point per feature-map cell, at ``((x + offset) * stride_w, (y + offset) * stride_h)``
in input-image pixels (``offset`` 0.5: the cell centre, MMDetection's default), ordered row-major
(y outer, x inner) like the head's flattened ``(B, C, H, W) -> (B, H*W, C)`` outputs.
"""
import math
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from .anchor_generator import _pair


@TASK_UTILS.register_module()
class MlvlPointGenerator:
    """Points of every pyramid level (MMDetection's ``MlvlPointGenerator``).

    Args:
        strides: per level, the stride in pixels, an int or (w, h).
        offset: where in its cell a point lies, as a fraction of the stride (0.5: centre).
    """

    def __init__(self, strides: Sequence[Union[int, Tuple[int, int]]], offset: float = 0.5) -> None:
        self.strides = [_pair(s) for s in strides]
        self.offset = offset

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        """One point per location on every level."""
        return [1] * len(self.strides)

    def _check_levels(self, featmap_sizes: Sequence) -> None:
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'MlvlPointGenerator: got {len(featmap_sizes)} feature-map sizes for '
                             f'{self.num_levels} strides {self.strides}; give one (h, w) per level')

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]], dtype: torch.dtype = torch.float32,
                    device: Union[str, torch.device] = 'cpu', with_stride: bool = False) -> List[Tensor]:
        """Per level (H_l * W_l, 2) points (x, y) in pixels, or (H_l * W_l, 4)
        (x, y, stride_w, stride_h) with ``with_stride``."""
        self._check_levels(featmap_sizes)
        return [self.single_level_grid_priors(tuple(s), i, dtype, device, with_stride)
                for i, s in enumerate(featmap_sizes)]

    def single_level_grid_priors(self, featmap_size: Tuple[int, int], level_idx: int,
                                 dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = 'cpu',
                                 with_stride: bool = False) -> Tensor:
        """(H * W, 2) points of one level (or (H * W, 4) with the level's strides appended)."""
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        xs = ((torch.arange(feat_w, device=device) + self.offset) * stride_w).to(dtype)
        ys = ((torch.arange(feat_h, device=device) + self.offset) * stride_h).to(dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        cols = [xx.reshape(-1), yy.reshape(-1)]
        if with_stride:
            cols += [xx.new_full((xx.numel(),), stride_w), xx.new_full((xx.numel(),), stride_h)]
        return torch.stack(cols, dim=-1)

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]], pad_shape: Sequence[int],
                    device: Union[str, torch.device] = 'cpu') -> List[Tensor]:
        """Per level (H_l * W_l,) bool: the point's cell starts inside the padded image ``pad_shape``
        (h, w), i.e. y < ceil(h / stride_h) and x < ceil(w / stride_w) (batch padding excluded)."""
        self._check_levels(featmap_sizes)
        h, w = pad_shape[:2]
        flags = []
        for (feat_h, feat_w), (stride_w, stride_h) in zip(featmap_sizes, self.strides):
            valid_h = min(int(math.ceil(h / stride_h)), feat_h)
            valid_w = min(int(math.ceil(w / stride_w)), feat_w)
            flags.append(self.single_level_valid_flags((feat_h, feat_w), (valid_h, valid_w), device))
        return flags

    @staticmethod
    def single_level_valid_flags(featmap_size: Tuple[int, int], valid_size: Tuple[int, int],
                                 device: Union[str, torch.device] = 'cpu') -> Tensor:
        """(H * W,) bool: True where y < valid_h and x < valid_w."""
        feat_h, feat_w = featmap_size
        valid_h, valid_w = valid_size
        valid_y = torch.arange(feat_h, device=device) < valid_h
        valid_x = torch.arange(feat_w, device=device) < valid_w
        return (valid_y[:, None] & valid_x[None, :]).reshape(-1)

    def sparse_priors(self, prior_idxs: Tensor, featmap_size: Tuple[int, int], level_idx: int,
                      dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = 'cpu') -> Tensor:
        """(K, 2) points at flat indices ``prior_idxs`` (K,) of one level, without the whole grid."""
        feat_w = featmap_size[1]
        stride_w, stride_h = self.strides[level_idx]
        x = (prior_idxs % feat_w + self.offset) * stride_w
        y = (torch.div(prior_idxs, feat_w, rounding_mode='floor') + self.offset) * stride_h
        return torch.stack([x, y], 1).to(dtype=dtype, device=device)

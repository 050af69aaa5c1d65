"""``AnchorGenerator``: the dense anchor boxes an anchor-based head (RPN) predicts against.

Each pyramid level has A base anchors (one per ratio x scale) centred on the level's first cell;
the level's anchors are those base anchors shifted to every cell of the feature map. Names,
defaults and the anchor order follow MMDetection 3.x, so a trained RPN's outputs line up.
"""
import math
import warnings
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS

# Distinct feature-map size combinations kept in the grid cache (multi-scale training and
# keep-ratio resizing produce a few dozen; each entry is a few MB).
_CACHE_SIZE = 64


def _pair(stride) -> Tuple[int, int]:
    """A stride given as an int or a (w, h) pair -> (stride_w, stride_h)."""
    if isinstance(stride, (int, float)):
        return (stride, stride)
    if isinstance(stride, (tuple, list)) and len(stride) == 2:
        return (stride[0], stride[1])
    raise TypeError(f'AnchorGenerator: each stride must be a number or a (w, h) pair, got {stride!r}')


@TASK_UTILS.register_module()
class AnchorGenerator:
    """Standard 2D anchor generator (MMDetection's ``AnchorGenerator``).

    Args:
        strides: per level, the stride in pixels of the feature map, an int or (w, h).
        ratios: anchor height / width ratios, shared by all levels.
        scales: anchor scales relative to ``base_size``. Give either this or the octave pair.
        base_sizes: per level, the anchor base size in pixels; defaults to min(stride).
        scale_major: if True the base anchors are ordered ratio-outer, scale-inner.
        octave_base_scale, scales_per_octave: alternative to ``scales``:
            ``scales = octave_base_scale * 2 ** (arange(scales_per_octave) / scales_per_octave)``.
        centers: per level, the (x, y) centre of the base anchors; default from ``center_offset``.
        center_offset: centre of the base anchors as a fraction of the base size (0 = the top-left
            corner of the cell, MMDetection's default; 0.5 = the cell centre).
        round_base_anchors: round the base anchors' coordinates to whole pixels, as torchvision's
            ``AnchorGenerator`` does (its 45.25 x 22.63 anchor becomes [-23, -11, 23, 11]).
        stride_from_input_size: take each level's stride as ``input size // feature-map size``
            (per axis, the input size being level 0's feature-map size times its stride), as
            torchvision's ``AnchorGenerator`` does, instead of the nominal ``strides``. The two agree
            when the padded input is a multiple of the coarsest stride; otherwise a level whose size
            was rounded up gets a smaller stride (an 800-pixel-high input has 13 rows at stride 64:
            800 // 13 = 61).
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 ratios: Sequence[float],
                 scales: Optional[Sequence[float]] = None,
                 base_sizes: Optional[Sequence[int]] = None,
                 scale_major: bool = True,
                 octave_base_scale: Optional[float] = None,
                 scales_per_octave: Optional[int] = None,
                 centers: Optional[Sequence[Tuple[float, float]]] = None,
                 center_offset: float = 0.,
                 round_base_anchors: bool = False,
                 stride_from_input_size: bool = False) -> None:
        if centers is not None:
            if len(centers) != len(strides):
                raise ValueError(f'AnchorGenerator: got {len(centers)} centers for {len(strides)} strides; '
                                 'give one (x, y) centre per level')
            if center_offset != 0:
                raise ValueError('AnchorGenerator: center_offset must be 0 when centers are given '
                                 f'(got {center_offset})')
        if not 0 <= center_offset <= 1:
            raise ValueError(f'AnchorGenerator: center_offset must be in [0, 1], got {center_offset}')
        self.strides = [_pair(s) for s in strides]
        self.base_sizes = [min(s) for s in self.strides] if base_sizes is None else list(base_sizes)
        if len(self.base_sizes) != len(self.strides):
            raise ValueError(f'AnchorGenerator: got {len(self.base_sizes)} base_sizes for {len(self.strides)} '
                             'strides; give one per level')

        octave = octave_base_scale is not None and scales_per_octave is not None
        if octave == (scales is not None):
            raise ValueError('AnchorGenerator: give either `scales` or both `octave_base_scale` and '
                             '`scales_per_octave`, not both and not neither')
        if octave:
            scales = [octave_base_scale * 2 ** (i / scales_per_octave) for i in range(scales_per_octave)]
        self.scales = torch.tensor(scales, dtype=torch.float32)
        self.ratios = torch.tensor(ratios, dtype=torch.float32)
        self.octave_base_scale = octave_base_scale
        self.scales_per_octave = scales_per_octave
        self.scale_major = scale_major
        self.centers = centers
        self.center_offset = center_offset
        self.round_base_anchors = round_base_anchors
        self.stride_from_input_size = stride_from_input_size
        self.base_anchors = self.gen_base_anchors()
        self._grid_cache: 'OrderedDict[tuple, List[Tensor]]' = OrderedDict()

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        """Anchors per feature-map location, per level."""
        return [a.size(0) for a in self.base_anchors]

    # MMDetection 2.x name, still used by some heads.
    num_base_anchors = num_base_priors

    def gen_base_anchors(self) -> List[Tensor]:
        """Per level, the (A, 4) float32 xyxy anchors of the cell at the origin."""
        return [
            self.gen_single_level_base_anchors(base_size, self.scales, self.ratios,
                                               None if self.centers is None else self.centers[i])
            for i, base_size in enumerate(self.base_sizes)
        ]

    def gen_single_level_base_anchors(self, base_size: float, scales: Tensor, ratios: Tensor,
                                      center: Optional[Tuple[float, float]] = None) -> Tensor:
        """(A, 4) base anchors, A = len(ratios) * len(scales), xyxy around ``center``."""
        w = h = base_size
        if center is None:
            x_center, y_center = self.center_offset * w, self.center_offset * h
        else:
            x_center, y_center = center
        # ratio = h / w at constant area: h scales by sqrt(ratio), w by 1 / sqrt(ratio).
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * scales[None, :]).reshape(-1)
            hs = (h * h_ratios[:, None] * scales[None, :]).reshape(-1)
        else:
            ws = (w * scales[:, None] * w_ratios[None, :]).reshape(-1)
            hs = (h * scales[:, None] * h_ratios[None, :]).reshape(-1)
        anchors = torch.stack([x_center - 0.5 * ws, y_center - 0.5 * hs, x_center + 0.5 * ws, y_center + 0.5 * hs],
                              dim=-1)
        return anchors.round() if self.round_base_anchors else anchors

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]], dtype: torch.dtype = torch.float32,
                    device: Union[str, torch.device] = 'cpu') -> List[Tensor]:
        """Anchors of every level for the given feature-map sizes.

        Args:
            featmap_sizes: per level, the (H, W) of the feature map.

        Returns:
            Per level, (H * W * A, 4) xyxy anchors in input-image pixels, ordered row-major over
            (y, x), then the A base anchors. The tensors are cached and shared between calls:
            treat them as read-only.
        """
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'AnchorGenerator.grid_priors: got {len(featmap_sizes)} feature-map sizes for '
                             f'{self.num_levels} levels')
        device = torch.device(device)
        if torch.jit.is_tracing() or torch.compiler.is_exporting():
            # Sizes are symbolic in graph capture: no int() (it would freeze them) and no cache.
            sizes = [tuple(s) for s in featmap_sizes]
            strides = self._level_strides(sizes)
            return [self.single_level_grid_priors(size, i, dtype, device, stride=strides[i])
                    for i, size in enumerate(sizes)]
        key = (tuple((int(s[0]), int(s[1])) for s in featmap_sizes), dtype, device)
        cached = self._grid_cache.get(key)
        if cached is not None:
            self._grid_cache.move_to_end(key)
            return cached
        strides = self._level_strides(key[0])
        priors = [self.single_level_grid_priors(size, i, dtype, device, stride=strides[i])
                  for i, size in enumerate(key[0])]
        self._grid_cache[key] = priors
        if len(self._grid_cache) > _CACHE_SIZE:
            self._grid_cache.popitem(last=False)
        return priors

    def _level_strides(self, featmap_sizes: Sequence[Tuple[int, int]]) -> List[Tuple[int, int]]:
        """Per level the (w, h) stride the anchors are laid out with (see ``stride_from_input_size``)."""
        if not self.stride_from_input_size:
            return self.strides
        input_h = featmap_sizes[0][0] * self.strides[0][1]
        input_w = featmap_sizes[0][1] * self.strides[0][0]
        return [(input_w // w, input_h // h) for h, w in featmap_sizes]

    def single_level_grid_priors(self, featmap_size: Tuple[int, int], level_idx: int,
                                 dtype: torch.dtype = torch.float32,
                                 device: Union[str, torch.device] = 'cpu',
                                 stride: Optional[Tuple[int, int]] = None) -> Tensor:
        """(H * W * A, 4) anchors of one level (not cached; see :meth:`grid_priors`).

        ``stride``: (w, h) spacing of the anchors in pixels; default the level's nominal stride.
        """
        base = self.base_anchors[level_idx].to(device=device, dtype=dtype)
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx] if stride is None else stride
        shift_x = torch.arange(feat_w, device=device).to(dtype) * stride_w
        shift_y = torch.arange(feat_h, device=device).to(dtype) * stride_h
        shift_yy, shift_xx = torch.meshgrid(shift_y, shift_x, indexing='ij')  # (H, W), y outer
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1).reshape(-1, 4)
        return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)

    def sparse_priors(self, prior_idxs: Tensor, featmap_size: Tuple[int, int], level_idx: int,
                      dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = 'cpu') -> Tensor:
        """The anchors at some indices of one level, without building the whole grid.

        Args:
            prior_idxs: (N,) long indices into that level's :meth:`single_level_grid_priors`
                (row-major over (y, x), then the A base anchors).
            featmap_size: (H, W) of the level's feature map.
            level_idx: the pyramid level.

        Returns:
            (N, 4) xyxy anchors, equal to ``single_level_grid_priors(featmap_size, level_idx)[prior_idxs]``.
        """
        _, feat_w = featmap_size
        num_base = self.num_base_priors[level_idx]
        stride_w, stride_h = self.strides[level_idx]
        cell = prior_idxs // num_base
        x = (cell % feat_w) * stride_w
        y = (cell // feat_w) * stride_h
        shifts = torch.stack([x, y, x, y], dim=1).to(device=device, dtype=dtype)
        base = self.base_anchors[level_idx].to(device=device, dtype=dtype)
        return shifts + base[(prior_idxs % num_base).to(base.device)]

    def grid_anchors(self, featmap_sizes: Sequence[Tuple[int, int]],
                     device: Union[str, torch.device] = 'cpu') -> List[Tensor]:
        """Deprecated MMDetection 2.x name of :meth:`grid_priors` (float32 anchors)."""
        warnings.warn('AnchorGenerator.grid_anchors is deprecated; use grid_priors', DeprecationWarning,
                      stacklevel=2)
        return self.grid_priors(featmap_sizes, device=device)

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]], pad_shape: Sequence[int],
                    device: Union[str, torch.device] = 'cpu') -> List[Tensor]:
        """Which anchors sit on real (padded-image) pixels rather than on batch padding.

        Args:
            featmap_sizes: per level, the (H, W) of the feature map (of the whole padded batch).
            pad_shape: (h, w) of this image after its own padding, in pixels.

        Returns:
            Per level, a (H * W * A,) bool tensor in :meth:`grid_priors` order.
        """
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'AnchorGenerator.valid_flags: got {len(featmap_sizes)} feature-map sizes for '
                             f'{self.num_levels} levels')
        h, w = pad_shape[:2]
        flags = []
        for i, (feat_h, feat_w) in enumerate(featmap_sizes):
            stride_w, stride_h = self.strides[i]
            valid_h = min(int(math.ceil(h / stride_h)), feat_h)
            valid_w = min(int(math.ceil(w / stride_w)), feat_w)
            flags.append(self.single_level_valid_flags((feat_h, feat_w), (valid_h, valid_w),
                                                       self.num_base_priors[i], device))
        return flags

    @staticmethod
    def single_level_valid_flags(featmap_size: Tuple[int, int], valid_size: Tuple[int, int],
                                 num_base_anchors: int, device: Union[str, torch.device] = 'cpu') -> Tensor:
        """(H * W * A,) bool: True where y < valid_h and x < valid_w."""
        feat_h, feat_w = featmap_size
        valid_h, valid_w = valid_size
        valid_y = torch.arange(feat_h, device=device) < valid_h
        valid_x = torch.arange(feat_w, device=device) < valid_w
        valid = valid_y[:, None] & valid_x[None, :]
        return valid.reshape(-1, 1).expand(-1, num_base_anchors).reshape(-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, ratios={self.ratios.tolist()}, '
                f'scales={self.scales.tolist()}, base_sizes={self.base_sizes}, scale_major={self.scale_major}, '
                f'centers={self.centers}, center_offset={self.center_offset}, '
                f'round_base_anchors={self.round_base_anchors}, stride_from_input_size={self.stride_from_input_size})')

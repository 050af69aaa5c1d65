"""``BatchFixedSizePad``: MMDetection's batch augment padding a batch up to a fixed ``(h, w)``.

Pads bottom / right with ``img_pad_value`` (after normalisation, as it runs inside the data
preprocessor); a batch already at least that large on both sides is left alone. Boxes do not
move (padding is bottom / right); ``batch_input_shape`` and ``pad_shape`` of every sample become
``size``. Used by the zoo's fixed-size crop configs (e.g. RandomCrop then a 1024 x 1024 batch).
"""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class BatchFixedSizePad(nn.Module):
    """Args: ``size`` (h, w); ``img_pad_value``; ``pad_mask`` / ``pad_seg`` (masks and segmentation
    maps are not supported here: must be False); ``mask_pad_value``, ``seg_pad_value`` (unused)."""

    def __init__(self, size: Tuple[int, int], img_pad_value: int = 0, pad_mask: bool = False,
                 mask_pad_value: int = 0, pad_seg: bool = False, seg_pad_value: int = 255) -> None:
        super().__init__()
        if pad_mask or pad_seg:
            raise NotImplementedError('BatchFixedSizePad: pad_mask / pad_seg pad masks and segmentation maps, '
                                      'which rcnn_plugins does not have (docs/MMDET_DIFFERENCES.md)')
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f'BatchFixedSizePad: size must be a positive (h, w), got {size!r}')
        self.size = tuple(size)
        self.img_pad_value = img_pad_value
        self.pad_mask, self.pad_seg = pad_mask, pad_seg
        self.mask_pad_value, self.seg_pad_value = mask_pad_value, seg_pad_value

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None) -> Tuple[Tensor, Optional[List]]:
        """(B, C, H, W) -> (B, C, max(H, h), max(W, w)), samples' metainfo updated."""
        src_h, src_w = inputs.shape[-2:]
        dst_h, dst_w = self.size
        if src_h >= dst_h and src_w >= dst_w:
            return inputs, data_samples
        inputs = F.pad(inputs, pad=(0, max(0, dst_w - src_w), 0, max(0, dst_h - src_h)), mode='constant',
                       value=self.img_pad_value)
        for sample in data_samples or ():
            # MMDetection sets (dst_h, dst_w) even when one side was already larger; keep that.
            sample.set_metainfo({'batch_input_shape': (dst_h, dst_w), 'pad_shape': (dst_h, dst_w)})
        return inputs, data_samples

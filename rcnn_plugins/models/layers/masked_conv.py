"""``MaskedConv2d``: mmcv's masked convolution computed densely, then masked.

mmcv's op evaluates the convolution only where ``mask`` is set (a speed-up of guided anchoring at
inference) and writes 0 elsewhere, bias included. Here the whole map is convolved and multiplied
by the mask: the same outputs, the same ``weight`` / ``bias`` keys, no compiled op.
"""
from typing import Optional

import torch
from torch import Tensor, nn


class MaskedConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose ``forward(x, mask)`` zeroes the outputs where ``mask`` is False.

    ``mask``: (H_out, W_out) for every image, or (B, 1, H_out, W_out) / (B, H_out, W_out) per image;
    None: a plain convolution.
    """

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        out = super().forward(x)
        if mask is None:
            return out
        if mask.dim() == 3:
            mask = mask[:, None]
        if mask.shape[-2:] != out.shape[-2:]:
            raise ValueError(f'MaskedConv2d: mask of spatial size {tuple(mask.shape[-2:])} for an output of '
                             f'{tuple(out.shape[-2:])}; give one mask value per output location')
        # where(), not out * mask: an Inf/NaN at a masked-out location stays out of the result.
        return torch.where(mask.to(torch.bool), out, out.new_zeros(()))

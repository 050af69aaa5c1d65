"""``AdaptiveConv`` (Cascade RPN): a 3x3 conv whose sampling grid follows the anchor.

Two modes, MMDetection's ``adapt_type``:

- ``'dilation'``: every anchor of a level has the same shape, so the adaption is a plain dilated
  conv (``nn.Conv2d`` with ``padding = dilation``, with bias).
- ``'offset'``: arbitrary anchors; a deformable conv (``torchvision.ops.deform_conv2d``, no bias)
  whose offsets are computed from the anchors (:func:`anchor_offsets`), not learnt.

The parameters live in ``conv`` (``conv.weight`` [, ``conv.bias``]), MMDetection's keys.
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from .deform_conv import safe_deform_conv2d


def anchor_offsets(anchors: Tensor, stride: int, featmap_size, dilation: int = 1) -> Tensor:
    """Deformable-conv offsets that move a 3x3 kernel onto each anchor (Cascade RPN, eq. 3).

    Args:
        anchors: (B, H*W, 4) xyxy anchors in input pixels, one per location (row-major y, x).
        stride: the level's stride in pixels.
        featmap_size: (H, W) of the level.
        dilation: the kernel's dilation (1 in MMDetection).

    Returns:
        (B, H*W, 18) offsets in feature cells, per tap (row-major ky, kx) a (dy, dx) pair: the
        anchor-centre shift from the location plus the tap's stretch to the anchor's size.
    """
    h, w = featmap_size
    if anchors.size(1) != h * w:
        raise ValueError(f'anchor_offsets: {anchors.size(1)} anchors for a {h}x{w} level; one anchor per '
                         'location is needed (a single base anchor in the anchor generator)')
    idx = torch.arange(-1, 2, dtype=anchors.dtype, device=anchors.device)
    ky, kx = idx.repeat_interleave(3), idx.repeat(3)                       # (9,) tap grid, row-major
    ys, xs = torch.meshgrid(torch.arange(h, dtype=anchors.dtype, device=anchors.device),
                            torch.arange(w, dtype=anchors.dtype, device=anchors.device), indexing='ij')
    cx = (anchors[..., 0] + anchors[..., 2]) * 0.5 / stride - xs.reshape(-1)   # (B, HW) centre shift
    cy = (anchors[..., 1] + anchors[..., 3]) * 0.5 / stride - ys.reshape(-1)
    # A 3x3 kernel spans 2 gaps; stretch each gap from `dilation` cells to the anchor's size / 2.
    sw = (anchors[..., 2] - anchors[..., 0]) / stride / 2 - dilation
    sh = (anchors[..., 3] - anchors[..., 1]) / stride / 2 - dilation
    off_x = sw[..., None] * kx + cx[..., None]                            # (B, HW, 9)
    off_y = sh[..., None] * ky + cy[..., None]
    return torch.stack([off_y, off_x], dim=-1).flatten(-2)


class AdaptiveConv(BaseModule):
    """3x3 conv adapted to the anchors.

    Args:
        in_channels, out_channels: as ``nn.Conv2d``.
        kernel_size, stride, padding, groups: must be 3, 1, 1, 1 in ``'offset'`` mode (MMDetection's limits).
        dilation: the dilation of ``'dilation'`` mode.
        bias: bias of the deformable conv (``'offset'`` mode; MMDetection's default False).
        adapt_type: ``'dilation'`` or ``'offset'``.
        init_cfg: MMDetection's default, Normal(std=0.01) on ``conv`` (applied by ``init_weights``).

    ``forward(x (B, C_in, H, W), offset (B, H*W, 18) or None) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 3, groups: int = 1, bias: bool = False,
                 adapt_type: str = 'dilation',
                 init_cfg=dict(type='Normal', std=0.01, override=dict(name='conv'))) -> None:
        super().__init__(init_cfg=init_cfg)
        if adapt_type not in ('offset', 'dilation'):
            raise ValueError(f"AdaptiveConv: adapt_cfg type must be 'offset' or 'dilation', got {adapt_type!r}")
        if kernel_size != 3:
            raise ValueError(f'AdaptiveConv: only kernel_size=3 is supported, got {kernel_size}')
        self.adapt_type = adapt_type
        if adapt_type == 'offset':
            if stride != 1 or padding != 1 or groups != 1:
                raise ValueError('AdaptiveConv offset mode supports stride=1, padding=1, groups=1 only')
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)

    def forward(self, x: Tensor, offset: Optional[Tensor] = None) -> Tensor:
        if self.adapt_type == 'dilation':
            if offset is not None:
                raise ValueError('AdaptiveConv: dilation mode takes no offsets')
            return self.conv(x)
        b, _, h, w = x.shape
        if offset is None or offset.shape[1] != h * w:
            raise ValueError(f'AdaptiveConv offset mode needs offsets of shape (B, {h * w}, 18), got '
                             f'{None if offset is None else tuple(offset.shape)}')
        offset = offset.permute(0, 2, 1).reshape(b, -1, h, w).contiguous()
        return safe_deform_conv2d(x, offset, self.conv.weight, self.conv.bias, padding=(1, 1))

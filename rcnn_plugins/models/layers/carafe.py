"""CARAFE, content-aware reassembly of features (Wang et al., ICCV 2019), in plain PyTorch.

``carafe(features, masks, kernel_size, group_size, scale_factor)`` computes what mmcv's compiled
``mmcv.ops.carafe`` computes, with ``F.unfold`` and one batched product instead of a CUDA kernel,
so it runs on any device and is differentiable by autograd. ``CARAFEPack`` is mmcv's upsampler with
its arguments and ``state_dict`` keys (``channel_compressor.*``, ``content_encoder.*``), registered
in ``MODELS`` as ``'carafe'`` (the name upsample configs use) and ``'CARAFEPack'``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import normal_init, xavier_init

from rcnn_plugins.registry import MODELS

# Channels reassembled per product: bounds the unfolded copy (chunk * k * k * H * W floats) to a few
# hundred MB at a 200x336 map while keeping each batched product large.
_CHANNEL_CHUNK = 64


def carafe(features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
           scale_factor: int) -> torch.Tensor:
    """Reassemble ``features`` with per-output-pixel kernels.

    Args:
        features: ``(N, C, H, W)``.
        masks: ``(N, group_size * kernel_size**2, s * H, s * W)`` with ``s = scale_factor``; channel
            ``g * k * k + dy * k + dx`` weighs input pixel ``(y + dy - k // 2, x + dx - k // 2)`` for
            the output pixels ``(s * y + i, s * x + j)`` of channel group ``g`` (zero outside the map).
        kernel_size: odd reassembly kernel size ``k``. group_size: channel groups ``G`` (``C % G == 0``).
        scale_factor: integer upsampling factor ``s``.

    Returns: ``(N, C, s * H, s * W)``: ``out[n, c, s*y+i, s*x+j] = sum_{dy,dx} features[n, c, y+dy-r,
    x+dx-r] * masks[n, g(c)*k*k + dy*k + dx, s*y+i, s*x+j]`` with ``r = k // 2``, ``g(c) = c // (C/G)``.
    """
    n, c, h, w = features.shape
    k, g, s = kernel_size, group_size, scale_factor
    if k % 2 != 1:
        raise ValueError(f'carafe: kernel_size must be odd, got {k}')
    if c % g:
        raise ValueError(f'carafe: channels ({c}) must be divisible by group_size ({g})')
    if masks.shape != (n, g * k * k, s * h, s * w):
        raise ValueError(f'carafe: masks must have shape {(n, g * k * k, s * h, s * w)} for features '
                         f'{tuple(features.shape)}, got {tuple(masks.shape)}')
    cg = c // g
    # (N, G, k*k, H, s, W, s) -> (N, G, H, W, k*k, s*s): the s*s output pixels of input pixel (y, x).
    m = masks.view(n, g, k * k, h, s, w, s).permute(0, 1, 3, 5, 2, 4, 6).reshape(n, g, h, w, k * k, s * s)
    out = features.new_empty(n, g, cg, h, s, w, s)
    for start in range(0, cg, _CHANNEL_CHUNK):
        stop = min(start + _CHANNEL_CHUNK, cg)
        x = features.view(n, g, cg, h, w)[:, :, start:stop].reshape(n, g * (stop - start), h, w)
        # Unfolded neighbourhoods: (N, G, c', k*k, H, W) -> (N, G, H, W, c', k*k).
        cols = F.unfold(x, k, padding=k // 2).view(n, g, stop - start, k * k, h, w).permute(0, 1, 4, 5, 2, 3)
        part = torch.matmul(cols, m)  # (N, G, H, W, c', s*s)
        out[:, :, start:stop] = part.view(n, g, h, w, stop - start, s, s).permute(0, 1, 4, 2, 5, 3, 6)
    return out.view(n, c, s * h, s * w)


@MODELS.register_module(name='carafe')
@MODELS.register_module()
class CARAFEPack(nn.Module):
    """mmcv's CARAFE upsampler: predict a softmax-normalised ``up_kernel x up_kernel`` kernel per
    output pixel and channel group from a compressed copy of the input, then reassemble.

    Args:
        channels: input channels ``C``.
        scale_factor: integer upsampling factor.
        up_kernel: reassembly kernel size (odd). up_group: channel groups sharing a kernel.
        encoder_kernel, encoder_dilation: the content encoder's 3x3 (default) conv.
        compressed_channels: channels of the 1x1 channel compressor.

    ``forward(x)``: ``(N, C, H, W)`` -> ``(N, C, scale_factor * H, scale_factor * W)``.
    """

    def __init__(self, channels: int, scale_factor: int, up_kernel: int = 5, up_group: int = 1,
                 encoder_kernel: int = 3, encoder_dilation: int = 1, compressed_channels: int = 64):
        super().__init__()
        self.channels = channels
        self.scale_factor = scale_factor
        self.up_kernel = up_kernel
        self.up_group = up_group
        self.encoder_kernel = encoder_kernel
        self.encoder_dilation = encoder_dilation
        self.compressed_channels = compressed_channels
        self.channel_compressor = nn.Conv2d(channels, compressed_channels, 1)
        self.content_encoder = nn.Conv2d(compressed_channels, up_kernel * up_kernel * up_group * scale_factor ** 2,
                                         encoder_kernel, padding=(encoder_kernel - 1) * encoder_dilation // 2,
                                         dilation=encoder_dilation)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's: Xavier-uniform convs, then a near-zero encoder so the first kernels are uniform."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                xavier_init(m, distribution='uniform')
        normal_init(self.content_encoder, std=0.001)

    def kernel_normalizer(self, mask: torch.Tensor) -> torch.Tensor:
        """``(N, G*k*k*s*s, H, W)`` encoder output -> ``(N, G*k*k, s*H, s*W)`` kernels summing to 1."""
        mask = F.pixel_shuffle(mask, self.scale_factor)
        n, mc, h, w = mask.shape
        mask = F.softmax(mask.view(n, mc // self.up_kernel ** 2, -1, h, w), dim=2)
        return mask.view(n, mc, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.kernel_normalizer(self.content_encoder(self.channel_compressor(x)))
        return carafe(x, mask, self.up_kernel, self.up_group, self.scale_factor)

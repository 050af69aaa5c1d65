"""``DeformRoIPool`` (Deformable ConvNets, Dai et al. 2017): RoIAlign whose bins are shifted by
per-RoI, per-bin offsets, in vectorised PyTorch (no compiled op; CPU and CUDA; differentiable in
the features and the offsets).

Geometry (mmcv's ``deform_roi_pool``): a RoI ``(x1, y1, x2, y2)`` in input pixels becomes
``x1 * spatial_scale - 0.5`` ... on the feature map (the half-pixel shift of RoIAlign with
``aligned=True``; no minimum size). Bin ``(ph, pw)`` of an ``oh x ow`` output starts at the RoI's
start plus ``gamma * offset[:, 0|1, ph, pw] * (roi width | height)`` (x then y) and is averaged
over a ``gh x gw`` grid of bilinear samples (``sampling_ratio``, or ``ceil(roi size / out size)``
per RoI when 0); samples outside ``[-1, size]`` count as zero, as in RoIAlign.

The sample points of every (RoI, bin, sample) give 4 corner rows of a channels-last view of the
feature maps and bilinear weights; one sparse x dense product sums the weighted rows per bin, so
memory is ``R * oh * ow * samples * 4`` indices and weights, never times C. With adaptive grids the RoIs' grids differ:
the largest one is used for all and the extra samples get weight 0.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from rcnn_plugins.registry import MODELS


def _bilinear_corners(base: Tensor, y: Tensor, x: Tensor, height: int, width: int) -> Tuple[Tensor, Tensor]:
    """Rows and weights of the 4 bilinear corners of float points (any shape S) in a channels-last
    map flattened to (B*H*W, C).

    ``base`` (broadcastable to S) long: first row of each point's image (batch_idx * H * W).
    Returns (S..., 4) long rows and (S..., 4) weights; points outside [-1, H] x [-1, W] get weight 0,
    points in [-1, 0) read the border (RoIAlign's rule)."""
    valid = (y >= -1.0) & (y <= height) & (x >= -1.0) & (x <= width)
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y_low = y.floor().clamp(max=height - 1)
    x_low = x.floor().clamp(max=width - 1)
    # On the last row/column both corners are that row (weight on the far one is then 0).
    y = torch.where(y_low >= height - 1, y_low, y)
    x = torch.where(x_low >= width - 1, x_low, x)
    y_high = (y_low + 1).clamp(max=height - 1)
    x_high = (x_low + 1).clamp(max=width - 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    yl, yh, xl, xh = y_low.long(), y_high.long(), x_low.long(), x_high.long()
    rows = torch.stack([base + yl * width + xl, base + yl * width + xh, base + yh * width + xl,
                        base + yh * width + xh], dim=-1)
    weights = torch.stack([hy * hx, hy * lx, ly * hx, ly * lx], dim=-1) * valid.unsqueeze(-1)
    return rows, weights


class _WeightedRowSum(torch.autograd.Function):
    """``out[n] = sum_k weights[n, k] * flat[rows[n, k]]``: (N, K) long, (N, K), (M, C) -> (N, C).

    Forward is one sparse (N, M) x dense (M, C) product (never N * K * C in memory). Backward: the
    features' gradient is the transposed product; the weights' one is built one sample column at a
    time (N * C memory per step) -- autograd's own sparse backward would form a dense (N, M) matrix.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, weights: Tensor, flat: Tensor) -> Tensor:
        n, k = rows.shape
        index = torch.stack([torch.arange(n, device=rows.device).repeat_interleave(k), rows.reshape(-1)])
        matrix = torch.sparse_coo_tensor(index, weights.reshape(-1), (n, flat.size(0)), check_invariants=False)
        ctx.save_for_backward(rows, flat)
        ctx.matrix = matrix
        return torch.sparse.mm(matrix, flat)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        rows, flat = ctx.saved_tensors
        grad_weights = grad_flat = None
        if ctx.needs_input_grad[2]:
            grad_flat = torch.sparse.mm(ctx.matrix.t(), grad_out)
        if ctx.needs_input_grad[1]:
            grad_weights = torch.stack([(grad_out * flat.index_select(0, rows[:, j])).sum(1)
                                        for j in range(rows.size(1))], dim=1)
        return None, grad_weights, grad_flat


def deform_roi_pool(input: Tensor, rois: Tensor, offset: Optional[Tensor], output_size: Tuple[int, int],
                    spatial_scale: float = 1.0, sampling_ratio: int = 0, gamma: float = 0.1) -> Tensor:
    """Deformable RoI pooling (see the module docstring).

    Args:
        input: (B, C, H, W) features.
        rois: (R, 5) [batch_idx, x1, y1, x2, y2] in input pixels.
        offset: (R, 2, oh, ow) normalised bin shifts (x, y) in units of ``gamma * roi size``, or
            None for plain RoIAlign (aligned=True) pooling.
        output_size: (oh, ow).
        spatial_scale: feature pixels per input pixel (1 / stride).
        sampling_ratio: samples per bin side; 0 = ceil(roi size / output size) per RoI.
        gamma: scale of the offsets.

    Returns:
        (R, C, oh, ow) in the input's dtype.
    """
    if input.dim() != 4 or rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError('deform_roi_pool: need input (B, C, H, W) and rois (R, 5) [batch_idx, x1, y1, x2, y2], '
                         f'got {tuple(input.shape)} and {tuple(rois.shape)}')
    oh, ow = output_size
    num_rois, channels, height, width = rois.size(0), input.size(1), input.size(2), input.size(3)
    if offset is not None and tuple(offset.shape) != (num_rois, 2, oh, ow):
        raise ValueError(f'deform_roi_pool: offset must be (R, 2, oh, ow) = {(num_rois, 2, oh, ow)}, '
                         f'got {tuple(offset.shape)}')
    if num_rois == 0:
        return input.new_zeros(0, channels, oh, ow)
    # Coordinates in at least float32 (bf16 would round a 1000 px box edge to 8 px).
    cdtype = torch.promote_types(rois.dtype, torch.float32)
    boxes = rois[:, 1:].to(cdtype) * spatial_scale - 0.5
    start = boxes[:, :2]                                   # (R, 2) x, y
    size = boxes[:, 2:] - boxes[:, :2]                     # (R, 2) w, h
    bin_size = size / size.new_tensor([ow, oh])            # (R, 2)
    if sampling_ratio > 0:
        grid = torch.full_like(size, sampling_ratio).long()
    else:
        grid = torch.ceil(size / size.new_tensor([ow, oh])).long().clamp(min=0)
    gw_max, gh_max = (int(v) for v in grid.max(0).values.tolist())
    # Bin origins (R, oh, ow) in feature pixels, shifted by the offsets.
    bx = start[:, 0, None, None] + torch.arange(ow, dtype=cdtype, device=rois.device).view(1, 1, ow) \
        * bin_size[:, 0, None, None]
    by = start[:, 1, None, None] + torch.arange(oh, dtype=cdtype, device=rois.device).view(1, oh, 1) \
        * bin_size[:, 1, None, None]
    if offset is not None:
        bx = bx + gamma * size[:, 0, None, None] * offset[:, 0].to(cdtype)
        by = by + gamma * size[:, 1, None, None] * offset[:, 1].to(cdtype)
    bx, by = bx.expand(num_rois, oh, ow), by.expand(num_rois, oh, ow)
    flat = input.permute(0, 2, 3, 1).reshape(-1, channels)
    base = (rois[:, 0].long() * (height * width)).view(num_rois, 1, 1, 1)
    gw = grid[:, 0].view(num_rois, 1, 1, 1)
    gh = grid[:, 1].view(num_rois, 1, 1, 1)
    step_w = (bin_size[:, 0] / grid[:, 0].clamp(min=1)).view(num_rois, 1, 1, 1)
    step_h = (bin_size[:, 1] / grid[:, 1].clamp(min=1)).view(num_rois, 1, 1, 1)
    # Every sample of every (RoI, bin): (R, oh, ow, gh, gw); samples beyond a RoI's own grid
    # (adaptive grids differ per RoI) get weight 0.
    ix = torch.arange(max(gw_max, 1), device=rois.device).view(1, 1, 1, 1, -1)
    iy = torch.arange(max(gh_max, 1), device=rois.device).view(1, 1, 1, -1, 1)
    xs = bx[..., None, None] + (ix.to(cdtype) + 0.5) * step_w.unsqueeze(-1)
    ys = by[..., None, None] + (iy.to(cdtype) + 0.5) * step_h.unsqueeze(-1)
    xs, ys = torch.broadcast_tensors(xs, ys)
    keep = (ix < gw.unsqueeze(-1)) & (iy < gh.unsqueeze(-1))
    count = (gw * gh).clamp(min=1).unsqueeze(-1).to(cdtype)
    rows, weights = _bilinear_corners(base.unsqueeze(-1), ys, xs, height, width)
    weights = weights * (keep / count).unsqueeze(-1)
    # The weighted sum of the gathered rows per bin (sparse product; float32 at least, as sparse
    # kernels lack half types on CPU).
    work = torch.promote_types(flat.dtype, torch.float32)
    pooled = _WeightedRowSum.apply(rows.reshape(num_rois * oh * ow, -1),
                                   weights.reshape(num_rois * oh * ow, -1).to(work), flat.to(work)).to(flat.dtype)
    return pooled.view(num_rois, oh, ow, channels).permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class DeformRoIPool(nn.Module):
    """mmcv's ``DeformRoIPool``: RoIAlign-style pooling with given per-bin offsets.

    Args:
        output_size: (oh, ow) or an int for a square output.
        spatial_scale: feature pixels per input pixel (1 / stride).
        sampling_ratio: samples per bin side; 0 = adaptive, ceil(roi size / output size).
        gamma: offsets are multiplied by ``gamma * roi size`` (feature pixels).
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, gamma: float = 0.1) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.gamma = float(gamma)

    def forward(self, input: Tensor, rois: Tensor, offset: Optional[Tensor] = None) -> Tensor:
        """input (B, C, H, W), rois (R, 5), offset (R, 2, oh, ow) or None -> (R, C, oh, ow)."""
        return deform_roi_pool(input, rois, offset, self.output_size, self.spatial_scale, self.sampling_ratio,
                               self.gamma)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, gamma={self.gamma}')

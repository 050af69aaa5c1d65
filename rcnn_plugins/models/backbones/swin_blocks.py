"""Building blocks of the Swin Transformer backbone (Liu et al., 2021), with MMDetection 3.x's
module names (``patch_embed.projection``, ``attn.w_msa.{qkv, proj, relative_position_*}``,
``ffn.layers.0.0`` / ``ffn.layers.1``, ``downsample.{norm, reduction}``). Not registered:
:class:`rcnn_plugins.models.backbones.swin.SwinTransformer` builds them.

Tokens are ``(B, H * W, C)`` row-major with ``hw_shape = (H, W)`` alongside.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` while training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


def _corner_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom/right so a ``kernel``/``stride`` window tiles it (``'corner'``)."""
    h, w = x.shape[-2:]
    pad_h = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pad_w = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, [0, pad_w, 0, pad_h]) if pad_h or pad_w else x


class PatchEmbed(BaseModule):
    """Non-overlapping patches: ``projection`` conv (``kernel_size = stride``), then ``norm``.
    ``(B, C_in, H, W) -> ((B, H' * W', embed_dims), (H', W'))`` with ``H' = ceil(H / stride)``."""

    def __init__(self, in_channels: int, embed_dims: int, kernel_size: int, stride: int, norm_cfg=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size, stride=stride)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1] if norm_cfg else None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        x = self.projection(_corner_pad(x, self.kernel_size, self.stride))
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        return (self.norm(x) if self.norm is not None else x), hw


class PatchMerging(BaseModule):
    """Merge each ``stride x stride`` patch (``nn.Unfold`` order: channel-major, then row, column),
    ``norm``, then ``reduction`` (linear, no bias) to ``out_channels``.
    ``((B, H * W, C), (H, W)) -> ((B, H' * W', out_channels), (H', W'))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, norm_cfg=dict(type='LN')):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.sampler = nn.Unfold(kernel_size=stride, stride=stride)
        merged = stride * stride * in_channels
        self.norm = build_norm_layer(norm_cfg, merged)[1] if norm_cfg else None
        self.reduction = nn.Linear(merged, out_channels, bias=False)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> Tuple[torch.Tensor, Tuple[int, int]]:
        b, _, c = x.shape
        h, w = hw_shape
        x = _corner_pad(x.view(b, h, w, c).permute(0, 3, 1, 2), self.stride, self.stride)
        out_hw = (x.shape[2] // self.stride, x.shape[3] // self.stride)
        x = self.sampler(x).transpose(1, 2)  # (B, H' * W', C * stride**2)
        x = self.norm(x) if self.norm is not None else x
        return self.reduction(x), out_hw


class FFN(BaseModule):
    """mmcv's FFN layout with two fcs: ``layers.0 = (Linear, act, Dropout)``, ``layers.1 = Linear``,
    ``layers.2 = Dropout``; output ``identity + drop_path(ffn(x))``."""

    def __init__(self, embed_dims: int, feedforward_channels: int, ffn_drop: float = 0.0,
                 drop_path: float = 0.0, act_cfg=dict(type='GELU')):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), build_activation_layer(act_cfg),
                          nn.Dropout(ffn_drop)),
            nn.Linear(feedforward_channels, embed_dims), nn.Dropout(ffn_drop))
        self.dropout_layer = DropPath(drop_path)

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return identity + self.dropout_layer(self.layers(x))


class WindowMSA(BaseModule):
    """Multi-head self-attention inside ``window x window`` token windows, with a learned relative
    position bias. ``forward(x (B*nW, N, C), mask (nW, N, N) or None) -> (B*nW, N, C)``."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, qkv_bias: bool = True,
                 qk_scale=None, attn_drop_rate: float = 0.0, proj_drop_rate: float = 0.0):
        super().__init__()
        self.embed_dims, self.num_heads, self.window_size = embed_dims, num_heads, (window_size, window_size)
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        ws = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
        # index of the (dy, dx) offset between tokens i and j: (dy + ws - 1) * (2 ws - 1) + dx + ws - 1
        ys, xs = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing='ij')
        ys, xs = ys.flatten(), xs.flatten()
        index = (ys[:, None] - ys[None, :] + ws - 1) * (2 * ws - 1) + (xs[:, None] - xs[None, :] + ws - 1)
        self.register_buffer('relative_position_index', index)
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def init_weights(self) -> None:
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b // nw, nw, self.num_heads, n, n) + mask[None, :, None]).view(-1, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class ShiftWindowMSA(BaseModule):
    """Window attention over a (cyclically shifted by ``shift_size``) token map padded to whole
    windows; tokens from different regions of the shifted map do not attend to each other.
    ``forward(x (B, H*W, C), hw_shape) -> (B, H*W, C)`` (before the residual)."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0, qkv_bias=True,
                 qk_scale=None, attn_drop_rate=0.0, proj_drop_rate=0.0, drop_path: float = 0.0):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f'Swin: shift_size must be in [0, window_size), got {shift_size}')
        self.window_size, self.shift_size = window_size, shift_size
        self.w_msa = WindowMSA(embed_dims, num_heads, window_size, qkv_bias, qk_scale, attn_drop_rate,
                               proj_drop_rate)
        self.drop = DropPath(drop_path)

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B * nW, ws * ws, C), windows in row-major order."""
        b, h, w, c = x.shape
        ws = self.window_size
        return x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h, w = hw_shape
        if n != h * w:
            raise ValueError(f'Swin: {n} tokens do not make a {h}x{w} map')
        ws, s = self.window_size, self.shift_size
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
        hp, wp = x.shape[1], x.shape[2]
        mask = None
        if s > 0:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
            # Label the 3x3 regions the roll brings together; pairs from different regions get -100.
            region = torch.zeros((1, hp, wp, 1), device=x.device)
            cuts = (slice(0, -ws), slice(-ws, -s), slice(-s, None))
            for i, (hs, wsl) in enumerate((hs, wsl) for hs in cuts for wsl in cuts):
                region[:, hs, wsl, :] = i
            labels = self._windows(region).squeeze(-1)  # (nW, N)
            mask = (labels[:, None, :] != labels[:, :, None]).float() * -100.0
        out = self.w_msa(self._windows(x), mask=mask)
        out = out.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if s > 0:
            out = torch.roll(out, shifts=(s, s), dims=(1, 2))
        return self.drop(out[:, :h, :w, :].reshape(b, h * w, c))


class SwinBlock(BaseModule):
    """``x + attn(norm1(x))``, then ``x + ffn(norm2(x))``; ``shift`` uses a half-window shift."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, window_size: int = 7,
                 shift: bool = False, qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.0, act_cfg=dict(type='GELU'), norm_cfg=dict(type='LN'), with_cp=False):
        super().__init__()
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size, window_size // 2 if shift else 0, qkv_bias,
                                   qk_scale, attn_drop_rate, drop_rate, drop_path_rate)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims, feedforward_channels, drop_rate, drop_path_rate, act_cfg)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        def inner(x):
            x = x + self.attn(self.norm1(x), hw_shape)
            return self.ffn(self.norm2(x), identity=x)
        if self.with_cp and x.requires_grad:
            return torch.utils.checkpoint.checkpoint(inner, x, use_reentrant=False)
        return inner(x)

"""Swin Transformer backbone (Liu et al., 2021), registered as ``'SwinTransformer'``.

MMDetection 3.x's arguments, defaults and ``state_dict`` keys (``patch_embed.*``,
``stages.{i}.blocks.{j}.*``, ``stages.{i}.downsample.*``, ``norm{i}``), so MMDetection's Swin
detectors load unchanged; ``convert_weights=True`` maps the official Swin release checkpoints
(``layers.*``, ``mlp.fc1``, patch-merging channel order) as MMDetection does.
"""
import os
from collections import OrderedDict
from typing import Dict, Sequence, Tuple
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import constant_init, trunc_normal_, trunc_normal_init

from rcnn_plugins.registry import MODELS
from ..pretrained import check_checkpoint_cached
from .swin_blocks import PatchEmbed, PatchMerging, SwinBlock


def swin_converter(ckpt: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Official Swin checkpoint keys -> ours (prefixed ``backbone.``, classifier head dropped).

    The official patch merging concatenates the 2x2 neighbours as (0,0), (1,0), (0,1), (1,1)
    (row, column) blocks of C channels; ``nn.Unfold`` orders channel-major, then (0,0), (0,1),
    (1,0), (1,1): the reduction's input columns and the norm's entries are permuted to match.
    """
    def reduction(w):
        out, cin = w.shape
        return w.reshape(out, 4, cin // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out, cin)

    def norm(w):
        return w.reshape(4, w.shape[0] // 4)[[0, 2, 1, 3], :].transpose(0, 1).reshape(-1)

    new = OrderedDict()
    for k, v in ckpt.items():
        if k.startswith('head'):
            continue
        if k.startswith('layers'):
            if 'attn.' in k:
                k = k.replace('attn.', 'attn.w_msa.')
            elif 'mlp.fc1.' in k:
                k = k.replace('mlp.fc1.', 'ffn.layers.0.0.')
            elif 'mlp.fc2.' in k:
                k = k.replace('mlp.fc2.', 'ffn.layers.1.')
            elif 'mlp.' in k:
                k = k.replace('mlp.', 'ffn.')
            elif 'downsample' in k:
                v = reduction(v) if 'reduction.' in k else norm(v) if 'norm.' in k else v
            k = k.replace('layers', 'stages', 1)
        elif k.startswith('patch_embed') and 'proj' in k:
            k = k.replace('proj', 'projection')
        new['backbone.' + k] = v
    return new


@MODELS.register_module()
class SwinTransformer(BaseModule):
    """Patch embedding, then ``len(depths)`` stages of shifted-window blocks, each stage but the last
    followed by patch merging (half the resolution, twice the channels).

    Args (MMDetection's): pretrain_img_size, in_channels, embed_dims (C of stage 0), patch_size,
        window_size, mlp_ratio, depths, num_heads, strides (``strides[0] == patch_size``),
        out_indices, qkv_bias, qk_scale, patch_norm, drop_rate, attn_drop_rate, drop_path_rate
        (linearly increasing over the blocks), use_abs_pos_embed, act_cfg, norm_cfg, with_cp,
        pretrained (deprecated alias of init_cfg), convert_weights (official checkpoint keys),
        frozen_stages, init_cfg (``Pretrained`` only; None: truncated-normal init).

    ``forward(x (B, in_channels, H, W))`` -> per index in ``out_indices`` ``(B, embed_dims * 2**i,
    ceil(H / (patch_size * 2**i)), ...)``. ``out_channels`` lists those channels.
    """

    def __init__(self, pretrain_img_size=224, in_channels: int = 3, embed_dims: int = 96, patch_size: int = 4,
                 window_size: int = 7, mlp_ratio: int = 4, depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24), strides: Sequence[int] = (4, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3), qkv_bias: bool = True, qk_scale=None,
                 patch_norm: bool = True, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, use_abs_pos_embed: bool = False, act_cfg=dict(type='GELU'),
                 norm_cfg=dict(type='LN'), with_cp: bool = False, pretrained=None, convert_weights: bool = False,
                 frozen_stages: int = -1, init_cfg=None):
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('SwinTransformer: give init_cfg or pretrained, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if strides[0] != patch_size:
            raise ValueError(f'SwinTransformer: strides[0] ({strides[0]}) must equal patch_size ({patch_size}): '
                             'the patch embedding does not overlap')
        if len(depths) != len(num_heads) or len(strides) != len(depths):
            raise ValueError('SwinTransformer: depths, num_heads and strides need one entry per stage')
        if isinstance(pretrain_img_size, int):
            pretrain_img_size = (pretrain_img_size, pretrain_img_size)
        elif len(pretrain_img_size) == 1:
            pretrain_img_size = (pretrain_img_size[0], pretrain_img_size[0])
        self.convert_weights = convert_weights
        self.frozen_stages = frozen_stages
        self.out_indices = tuple(out_indices)
        self.use_abs_pos_embed = use_abs_pos_embed
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, strides[0],
                                      norm_cfg if patch_norm else None)
        if use_abs_pos_embed:
            num_patches = (pretrain_img_size[0] // patch_size) * (pretrain_img_size[1] // patch_size)
            self.absolute_pos_embed = nn.Parameter(torch.zeros((1, num_patches, embed_dims)))
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = ModuleList()
        channels = embed_dims
        for i, depth in enumerate(depths):
            stage = nn.Module()  # holds blocks + downsample under MMDetection's names
            stage.blocks = ModuleList(
                SwinBlock(channels, num_heads[i], mlp_ratio * channels, window_size, shift=j % 2 == 1,
                          qkv_bias=qkv_bias, qk_scale=qk_scale, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                          drop_path_rate=dpr[sum(depths[:i]) + j], act_cfg=act_cfg, norm_cfg=norm_cfg,
                          with_cp=with_cp) for j in range(depth))
            stage.downsample = (PatchMerging(channels, 2 * channels, strides[i + 1], norm_cfg if patch_norm else None)
                                if i < len(depths) - 1 else None)
            self.stages.append(stage)
            if stage.downsample is not None:
                channels = stage.downsample.out_channels
        self.num_features = [int(embed_dims * 2 ** i) for i in range(len(depths))]
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.num_features[i])[1])
        self.out_channels = [self.num_features[i] for i in self.out_indices]

    def train(self, mode: bool = True) -> 'SwinTransformer':
        super().train(mode)
        self._freeze_stages()
        return self

    def _freeze_stages(self) -> None:
        frozen = []
        if self.frozen_stages >= 0:
            frozen += [self.patch_embed, self.drop_after_pos]
            if self.use_abs_pos_embed:
                self.absolute_pos_embed.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            if i - 1 in self.out_indices:
                frozen.append(getattr(self, f'norm{i - 1}'))
            frozen.append(self.stages[i - 1])
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def init_weights(self) -> None:
        """No init_cfg: truncated-normal linears, unit LayerNorms; ``Pretrained``: load (converted when
        ``convert_weights``), resizing relative-position tables to this window size, non-strict."""
        if self.init_cfg is None:
            if self.use_abs_pos_embed:
                trunc_normal_(self.absolute_pos_embed, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    trunc_normal_init(m, std=0.02, bias=0.0)
                elif isinstance(m, nn.LayerNorm):
                    constant_init(m, 1.0)
            return
        if not isinstance(self.init_cfg, dict) or 'checkpoint' not in self.init_cfg:
            raise ValueError("SwinTransformer: init_cfg must be dict(type='Pretrained', checkpoint=...) or None")
        from mmengine.runner.checkpoint import CheckpointLoader
        checkpoint = str(self.init_cfg['checkpoint'])
        check_checkpoint_cached(checkpoint)
        if checkpoint.startswith(('http://', 'https://')):
            # mmengine reads <hub>/checkpoints/<file name> if present and downloads otherwise: never here.
            cached = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(urlparse(checkpoint).path))
            if not os.path.isfile(cached):
                raise FileNotFoundError(
                    f'SwinTransformer: init_cfg asks for {checkpoint}, which would be downloaded, but weights are '
                    f'never downloaded here. Place that file at {cached}, or give a local path as the checkpoint, '
                    'or set init_cfg=None.')
            checkpoint = cached
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        sd = ckpt.get('state_dict', ckpt.get('model', ckpt))
        if self.convert_weights:
            sd = swin_converter(sd)
        # As MMDetection: only the ``backbone.`` entries are loaded.
        sd = OrderedDict((k[len('backbone.'):], v) for k, v in sd.items() if k.startswith('backbone.'))
        if sd and next(iter(sd)).startswith('module.'):
            sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
        own = self.state_dict()
        for key in [k for k in sd if 'relative_position_bias_table' in k and k in own]:
            (l1, h1), (l2, h2) = sd[key].shape, own[key].shape
            if h1 == h2 and l1 != l2:  # another window size: resize the (2w-1)^2 table bicubically
                s1, s2 = int(l1 ** 0.5), int(l2 ** 0.5)
                table = F.interpolate(sd[key].permute(1, 0).reshape(1, h1, s1, s1), size=(s2, s2), mode='bicubic')
                sd[key] = table.view(h2, l2).permute(1, 0).contiguous()
        self.load_state_dict(sd, strict=False)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x, hw = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            for block in stage.blocks:
                x = block(x, hw)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.view(-1, *hw, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x, hw = stage.downsample(x, hw)
        return tuple(outs)

"""Any timm model as a detection backbone, registered as ``'TIMMBackbone'``.

Arguments and ``state_dict`` keys (``timm_model.*``) are mmpretrain's ``TIMMBackbone``, the type
MMDetection's configs name as ``'mmpretrain.TIMMBackbone'``; that spelling is accepted too when
mmpretrain is not installed (see ``rcnn_plugins.registry``). timm is the ``timm`` optional extra.

Pretrained weights are never downloaded: ``checkpoint_path`` names a local file, and
``pretrained=True`` reads the file timm would download from the Hugging Face or torch hub cache,
or stops with the path to place it at.
"""
import os
from typing import List, Optional, Sequence, Tuple
from urllib.parse import urlparse

import torch
from mmengine.model import BaseModule

from rcnn_plugins.registry import MODELS


def _import_timm():
    try:
        import timm
    except ImportError as error:
        raise ImportError('TIMMBackbone needs timm: pip install "rcnn_plugins[timm]" (or pip install timm)') \
            from error
    return timm


def cached_pretrained_file(model_name: str) -> str:
    """Path of the weights timm would download for ``model_name`` (``'convnext_tiny'`` or with a tag,
    ``'convnext_tiny.fb_in1k'``), found in the Hugging Face hub cache or torch hub cache.

    Raises ``FileNotFoundError`` naming where to put the file when it is not cached.
    """
    timm = _import_timm()
    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        raise KeyError(f'TIMMBackbone: timm has no pretrained weights for {model_name!r}; '
                       'set pretrained=False or give checkpoint_path')
    places = []
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache
        repo_id = cfg.hf_hub_id.split('@')[0]
        for filename in ('model.safetensors', 'pytorch_model.bin'):
            found = try_to_load_from_cache(repo_id, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return found
            places.append(f'the Hugging Face hub cache entry {repo_id}/{filename}')
    if cfg.url:
        path = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(urlparse(cfg.url).path))
        if os.path.isfile(path):
            return path
        places.append(f'{path} (from {cfg.url})')
    if cfg.file and os.path.isfile(cfg.file):
        return cfg.file
    raise FileNotFoundError(
        f'TIMMBackbone: pretrained=True for {model_name!r}, but its weights are not cached and are never '
        f'downloaded here. Put them at {" or ".join(places) or "a local file"}, or give '
        'checkpoint_path="/path/to/weights.(safetensors|pth)", or set pretrained=False.')


@MODELS.register_module()
class TIMMBackbone(BaseModule):
    """``timm.create_model(model_name, features_only=..., in_chans=in_channels, **kwargs)`` as a backbone.

    Args:
        model_name: a timm model name (``'convnext_tiny'``, ``'resnet50'``, ``'efficientnet_b1'``, ...).
        features_only: return the multi-scale feature maps (what a detector needs); otherwise the
            last map of ``forward_features`` as a 1-tuple.
        pretrained: load timm's pretrained weights, from the local hub cache only.
        checkpoint_path: a local weights file (timm's format for this model), loaded like pretrained
            weights (before the feature wrapper, with timm's key conversion).
        in_channels: image channels.
        init_cfg: mmengine init config; weights from timm are kept as they are.
        **kwargs: given to ``timm.create_model``, e.g. ``out_indices=(0, 1, 2, 3)``, ``drop_path_rate``.

    Attributes:
        out_channels: channels of each returned map (the neck's ``in_channels``).
        out_strides: stride of each returned map relative to the image.

    ``forward(x (B, in_channels, H, W))`` -> tuple of ``(B, out_channels[i], H / out_strides[i], ...)``.
    """

    def __init__(self, model_name: str, features_only: bool = False, pretrained: bool = False,
                 checkpoint_path: str = '', in_channels: int = 3, init_cfg=None, **kwargs):
        timm = _import_timm()
        super().__init__(init_cfg)
        self.model_name = model_name
        self.features_only = features_only
        if checkpoint_path:
            if not os.path.isfile(checkpoint_path):
                raise FileNotFoundError(f'TIMMBackbone: checkpoint_path={checkpoint_path!r} does not exist')
            weights: Optional[str] = checkpoint_path
        elif pretrained:
            weights = cached_pretrained_file(model_name)
        else:
            weights = None
        if weights is not None:
            # timm loads a local file through the pretrained path (key conversion, then the feature
            # wrapper), so nothing is downloaded.
            kwargs['pretrained_cfg_overlay'] = dict(file=weights, hf_hub_id=None, url=None)
        if not features_only:
            kwargs.setdefault('num_classes', 0)
        try:
            self.timm_model = timm.create_model(model_name, pretrained=weights is not None,
                                                features_only=features_only, in_chans=in_channels, **kwargs)
        except (IndexError, AssertionError) as error:
            if 'out_indices' not in kwargs:
                raise
            probe = timm.create_model(model_name, features_only=True, pretrained=False)
            info = probe.feature_info
            raise ValueError(
                f'TIMMBackbone: out_indices={tuple(kwargs["out_indices"])} do not fit {model_name!r}, whose '
                f'feature levels are {list(range(len(info.channels())))} with channels {info.channels()} and '
                f'strides {info.reduction()}') from error
        if weights is not None:
            self._is_init = True  # keep timm's weights when the detector calls init_weights()
        if features_only:
            self.out_channels: List[int] = list(self.timm_model.feature_info.channels())
            self.out_strides: List[int] = list(self.timm_model.feature_info.reduction())
        else:
            self.out_channels = [self.timm_model.num_features]
            self.out_strides = [self.timm_model.feature_info[-1]['reduction']]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if not self.features_only:
            return (self.timm_model.forward_features(x),)
        feats = self.timm_model(x)
        return tuple(feats) if isinstance(feats, Sequence) else (feats,)

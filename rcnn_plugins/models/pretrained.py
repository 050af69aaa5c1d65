"""Offline checks for ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

``torchvision://NAME`` checkpoints are resolved in the torch hub cache and never downloaded at run
time: these checks fail early, before any weight is built, with the path to put the file at.
Used by the backbones (ResNet, VGG) and by heads that load ImageNet layers (PretrainedFCBBoxHead).
"""
import difflib
import os

from ..fileio import hub_checkpoint_path


def check_init_cfg_cached(init_cfg) -> None:
    """Run :func:`check_checkpoint_cached` on every ``Pretrained`` entry of a module's ``init_cfg``."""
    for cfg in init_cfg if isinstance(init_cfg, list) else [init_cfg]:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            check_checkpoint_cached(str(cfg.get('checkpoint')))


def check_checkpoint_cached(checkpoint: str) -> None:
    """Fail early, with instructions, when a ``torchvision://NAME`` checkpoint would be downloaded.

    mmengine resolves ``torchvision://NAME`` (and the older ``modelzoo://NAME``) through its
    ``get_torchvision_models()`` table to a download URL and loads it with ``torch.hub``'s
    ``load_state_dict_from_url``, which reads ``<torch.hub.get_dir()>/checkpoints/<URL file name>``
    if present and downloads otherwise. rcnn_plugins never downloads weights while building a model, so
    a file missing from that cache is an error that says where to put it.
    """
    for prefix in ('torchvision://', 'modelzoo://'):
        if checkpoint.startswith(prefix):
            name = checkpoint[len(prefix):]
            break
    else:
        return
    from mmengine.runner.checkpoint import get_torchvision_models
    urls = get_torchvision_models()
    if name not in urls:
        close = difflib.get_close_matches(name, list(urls), n=5, cutoff=0.6)
        raise KeyError(f'unknown torchvision checkpoint {checkpoint!r}; '
                       + (f'did you mean {", ".join(close)}?' if close else f'known names: {sorted(urls)}'))
    url = urls[name]
    cached = hub_checkpoint_path(url)
    if not os.path.isfile(cached):
        raise FileNotFoundError(
            f'init_cfg asks for the pretrained checkpoint {checkpoint!r}, which is not in the hub cache; '
            f'rcnn_plugins never downloads: put the file (from {url}) at {cached} (the torch hub cache; set '
            f'TORCH_HOME to move it), or give a local path as init_cfg=dict(type="Pretrained", '
            f'checkpoint="/path/to/file.pth"), or set init_cfg=None for random initialisation.')

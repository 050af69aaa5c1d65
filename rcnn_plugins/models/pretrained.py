"""Offline checks for ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

Named checkpoints are resolved the way mmengine resolves them and are never downloaded at run
time: these checks fail early, before any weight is built, with the exact path to put the file at.

- ``torchvision://NAME`` / ``modelzoo://NAME``: mmengine's ``get_torchvision_models()`` table.
- ``open-mmlab://NAME`` / ``openmmlab://NAME``: mmengine's ``get_external_models()`` table (after
  its deprecated-name map, e.g. ``resnet50_caffe`` -> ``detectron/resnet50_caffe``); an entry that
  is a relative path is a file under mmengine's home (``~/.cache/mmengine``).
- ``mmcls://NAME``: mmengine's ``get_mmcls_models()`` table.
- ``http(s)://...``: the URL itself.

A URL is read by ``torch.hub`` from ``<torch.hub.get_dir()>/checkpoints/<URL file name>``
(``$TORCH_HOME/hub/checkpoints``), which is where the file has to be placed.
Used by the backbones and by heads that load ImageNet layers (PretrainedFCBBoxHead).
"""
import difflib
import os
from typing import Optional, Tuple

from ..fileio import hub_checkpoint_path, mmengine_home

_TABLES = {
    'torchvision://': 'torchvision', 'modelzoo://': 'torchvision',
    'open-mmlab://': 'openmmlab', 'openmmlab://': 'openmmlab', 'mmcls://': 'mmcls',
}


def check_init_cfg_cached(init_cfg) -> None:
    """Run :func:`check_checkpoint_cached` on every ``Pretrained`` entry of a module's ``init_cfg``."""
    for cfg in init_cfg if isinstance(init_cfg, list) else [init_cfg]:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            check_checkpoint_cached(str(cfg.get('checkpoint')))


def _table(kind: str) -> dict:
    from mmengine.runner.checkpoint import get_external_models, get_mmcls_models, get_torchvision_models
    return {'torchvision': get_torchvision_models, 'openmmlab': get_external_models,
            'mmcls': get_mmcls_models}[kind]()


def resolve_checkpoint(checkpoint: str) -> Optional[Tuple[str, str]]:
    """``(source, local path)`` where mmengine would read a named/URL checkpoint from, or None for
    a plain local path. ``source`` is the URL (or mmengine-home file) the name maps to.

    Raises KeyError, with the closest known names, for a name the table does not have.
    """
    if checkpoint.startswith(('http://', 'https://')):
        url = checkpoint
    else:
        prefix = next((p for p in _TABLES if checkpoint.startswith(p)), None)
        if prefix is None:
            return None
        name = checkpoint[len(prefix):]
        kind = _TABLES[prefix]
        table = _table(kind)
        if kind == 'openmmlab':
            from mmengine.runner.checkpoint import get_deprecated_model_names
            name = get_deprecated_model_names().get(name, name)
        if name not in table:
            close = difflib.get_close_matches(name, list(table), n=5, cutoff=0.6)
            what = 'torchvision' if kind == 'torchvision' else kind
            raise KeyError(f'unknown {what} checkpoint {checkpoint!r}; '
                           + (f'did you mean {", ".join(close)}?' if close else f'known names: {sorted(table)}'))
        url = table[name]
        if kind == 'openmmlab' and not url.startswith(('http://', 'https://')):
            return url, os.path.join(mmengine_home(), url)
    return url, hub_checkpoint_path(url)


def check_checkpoint_cached(checkpoint: str) -> None:
    """Fail early, with instructions, when a named or URL checkpoint is not on disk yet.

    mmengine loads these with ``torch.hub``'s ``load_state_dict_from_url``, which downloads a
    missing file; this project never downloads at run time, so a missing file is an error that
    names the URL and the exact path to place the file at.
    """
    resolved = resolve_checkpoint(checkpoint)
    if resolved is None:
        return
    source, cached = resolved
    if not os.path.isfile(cached):
        raise FileNotFoundError(
            f'init_cfg asks for the pretrained checkpoint {checkpoint!r}, which would be downloaded from '
            f'{source}, but nothing is downloaded at run time. Place that file at {cached} (the torch hub '
            f'cache; set TORCH_HOME to move it), or give a local path as init_cfg=dict(type="Pretrained", '
            f'checkpoint="/path/to/file.pth"), or set init_cfg=None for random initialisation.')

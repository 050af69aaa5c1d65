"""Route mmengine's checkpoint reading through rcnn_plugins' safe loader.

mmengine's ``CheckpointLoader`` picks a loader by path prefix. Its own loaders either use
``torch.load``'s default (``weights_only=True`` since torch 2.6, which rejects the message hub's
``HistoryBuffer`` in every mmengine checkpoint) or, for URLs, ``torch.hub`` with
``weights_only=False`` (any code in a downloaded file runs). Through mmengine's
``CheckpointLoader.register_scheme`` extension point this module replaces the loaders for local
files, ``http(s)://``, ``torchvision://`` / ``modelzoo://``, ``open-mmlab://`` and ``mmcls://``
with ones that read through :func:`rcnn_plugins.engine.safe_load.load_checkpoint_file`, so
``--resume``, ``load_from``, ``tools/test.py``, ``init_detector`` and ``Pretrained`` init all load
with ``weights_only=True`` plus an allow-list. Importing ``rcnn_plugins.engine`` (the Runner
does, to build our hooks; so do the tools and ``rcnn_plugins.apis``) installs them.
"""
import os
import os.path as osp
from urllib.parse import urlparse

from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home, _process_mmcls_checkpoint,
                                        get_deprecated_model_names, get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from .safe_load import load_checkpoint_file


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None):
    """A local checkpoint file (``.pth`` or ``.safetensors``), read safely."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_file(filename, map_location=map_location)


def _download(url: str) -> str:
    """The hub-cache path of ``url`` (``<torch.hub.get_dir()>/checkpoints/<file name>``, as
    ``torch.hub.load_state_dict_from_url`` uses). Nothing is downloaded at run time: a missing
    file is a ``FileNotFoundError`` naming the URL and the exact path to place it at."""
    import torch.hub
    cached = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))
    if not osp.isfile(cached):
        raise FileNotFoundError(f'checkpoint {url} is not in the torch hub cache and nothing is downloaded '
                                f'at run time: place the file at {cached} (set TORCH_HOME to move the cache), '
                                'or give a local path instead')
    return cached


@CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
def load_from_http(filename: str, map_location=None):
    """A checkpoint URL: read safely from the torch hub cache (never downloaded)."""
    return load_checkpoint_file(_download(filename), map_location=map_location)


@CheckpointLoader.register_scheme(prefixes=('modelzoo://', 'torchvision://'), force=True)
def load_from_torchvision(filename: str, map_location=None):
    """``torchvision://resnet50``: torchvision's ImageNet weights (mmengine's name table)."""
    name = filename.split('://', 1)[1]
    return load_from_http(get_torchvision_models()[name], map_location=map_location)


@CheckpointLoader.register_scheme(prefixes=('open-mmlab://', 'openmmlab://'), force=True)
def load_from_openmmlab(filename: str, map_location=None):
    """``open-mmlab://NAME``: OpenMMLab's model table (a URL or a file under mmengine's home)."""
    name = filename.split('://', 1)[1]
    url = get_external_models()[get_deprecated_model_names().get(name, name)]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return load_from_local(osp.join(_get_mmengine_home(), url), map_location=map_location)


@CheckpointLoader.register_scheme(prefixes='mmcls://', force=True)
def load_from_mmcls(filename: str, map_location=None):
    """``mmcls://NAME``: an MMClassification backbone, its keys renamed as mmengine does."""
    url = get_mmcls_models()[filename[len('mmcls://'):]]
    return _process_mmcls_checkpoint(load_from_http(url, map_location=map_location))

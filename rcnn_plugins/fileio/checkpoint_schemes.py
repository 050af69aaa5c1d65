"""Route mmengine's checkpoint reading through rcnn_plugins' safe loader.

mmengine's ``CheckpointLoader`` picks a loader by path prefix. Its own loaders either use
``torch.load``'s default (``weights_only=True`` since torch 2.6, which rejects the message hub's
``HistoryBuffer`` in every mmengine checkpoint) or, for URLs, ``torch.hub`` with
``weights_only=False`` (any code in a downloaded file runs). :func:`install_safe_loading`
replaces, through mmengine's public ``CheckpointLoader.register_scheme`` extension point, the
loaders for local files, ``http(s)://``, ``torchvision://`` / ``modelzoo://``, ``open-mmlab://``
and ``mmcls://`` with ones that read through
:func:`rcnn_plugins.fileio.safe_load.load_checkpoint_file`, so ``--resume``, ``load_from``,
``tools/test.py``, ``init_detector`` and ``Pretrained`` init all load with ``weights_only=True``
plus an allow-list.

Importing this module changes nothing: every entry point (the commands in
:mod:`rcnn_plugins.cli`, ``rcnn_plugins.engine.build_runner``, ``init_detector``,
``DetInferencer``) calls :func:`install_safe_loading`, which is idempotent.
"""
import os.path as osp
from collections import OrderedDict

from .hub_cache import hub_checkpoint_path, mmengine_home, torchvision_checkpoint_url
from .safe_load import load_checkpoint_file

_installed = False


def load_from_local(filename: str, map_location=None):
    """A local checkpoint file (``.pth`` or ``.safetensors``), read safely."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_file(filename, map_location=map_location)


def _fetch(url: str) -> str:
    """The hub-cache path of ``url`` (``<torch.hub.get_dir()>/checkpoints/<file name>``, where
    ``torch.hub`` would have put it). Nothing is downloaded at run time: a missing file is a
    ``FileNotFoundError`` naming the URL and the exact path to place it at."""
    cached = hub_checkpoint_path(url)
    if not osp.isfile(cached):
        raise FileNotFoundError(f'checkpoint {url} is not in the torch hub cache and rcnn_plugins never downloads: '
                                f'place the file at {cached} (set TORCH_HOME to move the cache), or give a local '
                                'path instead')
    return cached


def load_from_http(filename: str, map_location=None):
    """A checkpoint URL: read from the torch hub cache, safely."""
    return load_checkpoint_file(_fetch(filename), map_location=map_location)


def load_from_torchvision(filename: str, map_location=None):
    """``torchvision://resnet50``: torchvision's ImageNet weights (mmengine's name table)."""
    return load_from_http(torchvision_checkpoint_url(filename.split('://', 1)[1]), map_location=map_location)


def load_from_openmmlab(filename: str, map_location=None):
    """``open-mmlab://NAME``: OpenMMLab's model table (a URL or a file under mmengine's home)."""
    from mmengine.runner.checkpoint import get_deprecated_model_names, get_external_models
    name = filename.split('://', 1)[1]
    url = get_external_models()[get_deprecated_model_names().get(name, name)]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return load_from_local(osp.join(mmengine_home(), url), map_location=map_location)


def load_from_mmcls(filename: str, map_location=None):
    """``mmcls://NAME``: an MMClassification backbone, ``backbone.`` prefixes dropped (as mmengine
    does: the classifier's other weights are not kept)."""
    from mmengine.runner.checkpoint import get_mmcls_models
    checkpoint = load_from_http(get_mmcls_models()[filename[len('mmcls://'):]], map_location=map_location)
    state_dict = checkpoint.get('state_dict', checkpoint)
    return dict(state_dict=OrderedDict(
        (key[len('backbone.'):], value) for key, value in state_dict.items() if key.startswith('backbone.')))


def install_safe_loading() -> bool:
    """Register the loaders above with mmengine's ``CheckpointLoader`` (replacing its own).

    Idempotent; returns True the first time (when it changed something), False afterwards.
    """
    global _installed
    if _installed:
        return False
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in (('', load_from_local),
                             (('http://', 'https://'), load_from_http),
                             (('modelzoo://', 'torchvision://'), load_from_torchvision),
                             (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
                             ('mmcls://', load_from_mmcls)):
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
    _installed = True
    return True

"""Where downloaded weights live: the torch hub cache and mmengine's home folder.

rcnn_plugins never downloads weights while building a model: a ``torchvision://NAME`` or URL
checkpoint is read from the file ``torch.hub.load_state_dict_from_url`` would have stored
(:func:`hub_checkpoint_path`), and ``open-mmlab://`` files that are not URLs from mmengine's home
(:func:`mmengine_home`). Both computed here only, with mmengine's public name tables.
"""
import os
import os.path as osp
from urllib.parse import urlparse


def hub_checkpoint_path(url: str) -> str:
    """``<torch.hub.get_dir()>/checkpoints/<file name of url>`` (set ``TORCH_HOME`` to move it)."""
    import torch.hub
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def mmengine_home() -> str:
    """mmengine's cache folder: ``$MMENGINE_HOME``, else ``$XDG_CACHE_HOME/mmengine``, else
    ``~/.cache/mmengine`` (mmengine's own rule)."""
    return osp.expanduser(os.getenv('MMENGINE_HOME',
                                    osp.join(os.getenv('XDG_CACHE_HOME', '~/.cache'), 'mmengine')))


def torchvision_checkpoint_url(name: str) -> str:
    """The download URL mmengine's table gives ``torchvision://NAME`` (KeyError if unknown)."""
    from mmengine.runner.checkpoint import get_torchvision_models
    return get_torchvision_models()[name]

"""Make mmengine 0.10 checkpoints loadable with torch >= 2.6.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, which rejects what mmengine 0.10
stores next to the weights (the message hub's ``HistoryBuffer``, which pickles bound methods through
``getattr``; numpy arrays), so ``--resume``, ``load_from``, ``tools/test.py`` and ``init_detector``
would fail on our checkpoints and MMDetection's. This module registers, through mmengine's own
``CheckpointLoader.register_scheme`` extension point, a local-file loader that passes
``weights_only=False`` as torch < 2.6 did. That unpickles arbitrary objects: load only checkpoints
you trust, as with MMDetection. Importing ``rcnn_plugins.engine`` (the Runner does, to build our
hooks; so do the tools and ``rcnn_plugins.apis``) installs it.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None):
    """mmengine's loader for local checkpoint files, with torch < 2.6's ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)

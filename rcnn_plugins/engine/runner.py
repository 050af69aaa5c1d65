"""Building mmengine's ``Runner`` the one way every entry point does (``tools/train.py``,
``tools/test.py``, alternating training): :func:`setup_runtime` first, then the process group
where mmengine's own set-up would fail on a CPU-only machine, then ``Runner.from_cfg``."""
import datetime

from mmengine.config import Config
from mmengine.logging import print_log

from ..config_utils import enter_default_scope
from ..fileio import install_safe_loading
from ..registry import check_config_types

#: mmengine / mmcv registry names that rcnn_plugins registers again in its own scope, so that a config
#: with ``default_scope='rcnn_plugins'`` gets ours: (registry, name, what ours changes).
REPLACED_NAMES = (
    ('HOOKS', 'CheckpointHook', 'atomic saves, pruning only after a successful save'),
    ('LOOPS', 'EpochBasedTrainLoop', 'bit-exact resume (data order and RNG state)'),
    ('LOOPS', 'IterBasedTrainLoop', 'bit-exact resume (data order and RNG state)'),
    ('TRANSFORMS', 'LoadImageFromFile', "MMDetection's (decoding errors name the file)"),
    ('TRANSFORMS', 'LoadAnnotations', "MMDetection's (boxes, labels, ignore flags)"),
    ('TRANSFORMS', 'Resize', "MMDetection's (scales boxes, records scale_factor)"),
    ('TRANSFORMS', 'RandomFlip', "MMDetection's (flips boxes)"),
    ('TRANSFORMS', 'RandomResize', "mmcv's, its inner Resize built from rcnn_plugins' registry"),
    ('TRANSFORMS', 'RandomChoiceResize', "mmcv's, its inner Resize built from rcnn_plugins' registry"),
    ('TRANSFORMS', 'TestTimeAug', "mmcv's, its views built from rcnn_plugins' registry"),
    ('DATASETS', 'ClassBalancedDataset', "mmengine's, the wrapped dataset built here, per-sample seeds passed on"),
)

_logged = False


def setup_runtime() -> None:
    """What every entry point calls before building models or a runner (idempotent):

    - routes mmengine's checkpoint loading through the safe loader
      (:func:`rcnn_plugins.fileio.install_safe_loading`);
    - logs, once per process, which mmengine / mmcv registry names rcnn_plugins replaces.
    """
    global _logged
    install_safe_loading()
    if not _logged:
        _logged = True
        names = ', '.join(f'{registry}.{name}' for registry, name, _ in REPLACED_NAMES)
        print_log(f'rcnn_plugins: safe checkpoint loading installed (weights_only=True + allow-list); with '
                  f"default_scope='rcnn_plugins' these mmengine/mmcv names are rcnn_plugins' own: {names}",
                  logger='current')


def build_runner(cfg: Config):
    """``mmengine.runner.Runner.from_cfg(cfg)`` after :func:`setup_runtime`.

    Every ``type='X'`` of the config is looked up first
    (:func:`rcnn_plugins.registry.check_config_types`): an unknown one is one ``KeyError`` line
    naming the nearest registered names, not an error after the Runner's config dump.

    With ``cfg.launcher == 'pytorch'`` on a machine without CUDA the process group is created here
    from torchrun's ``env://`` variables: mmengine's ``init_dist`` calls ``torch.cuda.set_device``
    unconditionally, and with the group already up the Runner skips it. The timeout is the one
    mmengine's ``init_dist`` passes (``env_cfg.dist_cfg.timeout``, seconds).
    """
    import torch
    import torch.distributed as dist
    from mmengine.runner import Runner
    setup_runtime()
    enter_default_scope(cfg)
    check_config_types(cfg)
    if cfg.get('launcher', 'none') == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        dist_cfg = cfg.env_cfg.dist_cfg
        timeout = dist_cfg.get('timeout')
        dist.init_process_group(
            backend=dist_cfg.backend,
            timeout=None if timeout is None else datetime.timedelta(seconds=timeout))
    return Runner.from_cfg(cfg)


def release_process_group() -> bool:
    """Destroy the process group of a finished distributed run; True when there was one.

    ``tools/train.py`` and ``tools/test.py`` call this once their run is done, then end the worker
    with :func:`rcnn_plugins.cli.common.exit_distributed_worker`.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        return True
    return False

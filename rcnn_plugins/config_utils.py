"""Reading configs the one way every tool and API does.

- :func:`load_config`: a config file plus ``--cfg-options`` overrides, each override key checked
  for typos first (:func:`typo_in_override`);
- :func:`get_test_pipeline_cfg`: the test pipeline, through any dataset wrappers;
- :func:`leaf_datasets`: the dataset configs inside wrappers;
- :func:`num_classes`: the number of classes of a detector config (also RPN-only ones);
- :func:`enter_default_scope`: switch mmengine's registries to the config's default scope.

Why the override check: mmengine's ``Config.merge_from_dict`` creates whatever key it is given, so
a typo is silent: ``default_hooks.chekpoint.interval=1`` adds a hook entry without a type (an
obscure error much later), ``model.test_cfg.rcnn.score_th=0.5`` is never read at all.
:func:`typo_in_override` walks each dotted key through the config and refuses one whose first
missing part is a near miss (``difflib`` ratio >= 0.8) of a key that exists at that place; keys
with no near miss are new keys on purpose (``default_hooks.checkpoint.max_keep_ckpts=3``) and pass.
"""
import copy
import difflib
from typing import List, Optional, Union

from mmengine.config import Config

SCOPE = 'rcnn_plugins'


class ConfigError(ValueError):
    """A config (or an override of it) that cannot be what the user meant; the message names the
    key and the fix."""


def typo_in_override(cfg, dotted_key: str) -> Optional[str]:
    """The message for ``dotted_key`` if it looks like a typo of an existing key, else None.

    Args:
        cfg: the mmengine ``Config`` (or a dict) before the override is merged.
        dotted_key: a ``--cfg-options`` key such as ``model.backbone.depth`` (list items by index:
            ``param_scheduler.0.gamma``).
    """
    node = dict(cfg.items())
    done = []
    for part in dotted_key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit():
            if int(part) >= len(node):
                return None  # mmengine reports the bad index itself
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                keys = [k for k in node if isinstance(k, str)]
                close = difflib.get_close_matches(part, keys, n=1, cutoff=0.8)
                if not close:
                    return None  # a new key
                where = '.'.join(done + [close[0]])
                return (f'--cfg-options {dotted_key}: the config has no {".".join(done + [part])}; did you '
                        f'mean {where}? (keys there: {", ".join(sorted(keys))})')
            node = node[part]
        else:
            return None  # overriding a value by a sub-key: mmengine decides
        done.append(part)
    return None


def merge_overrides(cfg: Config, options: Optional[dict]) -> Config:
    """Merge ``--cfg-options``-style ``{dotted key: value}`` into ``cfg`` (in place, returned),
    after checking every key for typos (:class:`ConfigError` naming the nearest existing key)."""
    if not options:
        return cfg
    for key in options:
        message = typo_in_override(cfg, key)
        if message is not None:
            raise ConfigError(message)
    cfg.merge_from_dict(dict(options))
    return cfg


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """A config file (or a ``Config``, copied) with checked ``cfg_options`` merged in.

    Raises:
        FileNotFoundError: no such config file.
        ConfigError: an override key looks like a typo of an existing key.
    """
    cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
    return merge_overrides(cfg, cfg_options)


def leaf_datasets(dataset_cfg: dict) -> List[dict]:
    """The dataset configs inside wrappers (``dataset=`` of RepeatDataset / ClassBalancedDataset,
    ``datasets=`` of ConcatDataset), in order; the dicts themselves, so changing them changes
    ``dataset_cfg``."""
    if 'datasets' in dataset_cfg:
        return [leaf for sub in dataset_cfg['datasets'] for leaf in leaf_datasets(sub)]
    if 'dataset' in dataset_cfg:
        return leaf_datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


def get_test_pipeline_cfg(cfg: Config, drop=('LoadAnnotations', )) -> List[dict]:
    """A copy of the transforms of the config's test pipeline (``test_dataloader``, else
    ``val_dataloader``), without the transform types in ``drop`` (inference images carry no
    annotations).

    A wrapper's own ``pipeline`` wins; otherwise the first leaf dataset's (a ConcatDataset of
    several test sets shares one pipeline in every config we know of).
    """
    dataloader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if dataloader is None:
        raise ConfigError('the config has no test_dataloader / val_dataloader whose dataset.pipeline says how '
                          'to load and resize an image; add one.')
    dataset = dataloader['dataset']
    pipeline = dataset.get('pipeline')
    if pipeline is None:
        pipeline = next((leaf.get('pipeline') for leaf in leaf_datasets(dataset) if leaf.get('pipeline')), None)
    if not pipeline:
        raise ConfigError('the config\'s test dataset has no pipeline (test_dataloader.dataset.pipeline, or in '
                          'the datasets it wraps); add one that loads and resizes an image.')
    return [copy.deepcopy(t) for t in pipeline if t.get('type') not in drop]


def num_classes(cfg: Config) -> int:
    """The number of object classes of the config's detector.

    ``roi_head.bbox_head.num_classes`` (a list of heads, as Cascade R-CNN: the first), else the
    dense head's (``bbox_head`` of an RPN-only or single-stage config, ``rpn_head``). An RPN's
    head is class-agnostic: its ``num_classes`` is 1 (MMDetection's default), the one "object" class.
    """
    model = cfg.model
    roi_head = model.get('roi_head')
    if roi_head is not None and roi_head.get('bbox_head') is not None:
        head = roi_head['bbox_head']
        head = head[0] if isinstance(head, (list, tuple)) else head
        return int(head['num_classes'])
    for key in ('bbox_head', 'rpn_head'):
        head = model.get(key)
        if head is not None:
            return int(head.get('num_classes', 1))
    raise ConfigError(f'model type={model.get("type")!r} has no roi_head.bbox_head, bbox_head or rpn_head '
                      'that says how many classes it predicts')


def enter_default_scope(cfg: Optional[Config] = None) -> None:
    """Make the config's ``default_scope`` (``'rcnn_plugins'`` if unset) mmengine's current one, so
    registry types such as ``'FasterRCNN'`` resolve to rcnn_plugins' classes."""
    from mmengine.registry import init_default_scope
    init_default_scope((cfg.get('default_scope', None) if cfg is not None else None) or SCOPE)

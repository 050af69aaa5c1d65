"""Registries of rcnn_plugins: children of mmengine's root registries, scope ``rcnn_plugins``.

Each registry names the package that holds its components in ``locations``, so mmengine imports
that package the first time a type is looked up: with ``default_scope='rcnn_plugins'`` (mmengine
imports ``rcnn_plugins.registry`` itself when it switches to that scope) or with a scoped type
such as ``'rcnn_plugins.FasterRCNN'``, no ``register_all_modules()`` call is needed.

Lookups that miss here fall back to mmengine's roots, which is how mmengine's own hooks,
optimizers, schedulers and mmcv's transforms (mmcv registers them into mmengine's root
TRANSFORMS) are found from an rcnn_plugins config.

An unknown ``type`` gets one line (:func:`unknown_type_hint`), from ``build`` of these registries
and from the command-line tools for mmengine's own lookups: an MMDetection type that is not here
is named as such (pointing to docs/MMDET_DIFFERENCES.md), never answered with a different
component of a similar name; a typo gets the registered names within an edit or two.
"""
import difflib
import re
from typing import List, Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry as MMEngineRegistry

SCOPE = 'rcnn_plugins'

# mmengine 0.10's build_from_cfg: "<type> is not in the <scope>::<name> registry. Please check ..."
_UNKNOWN_TYPE = re.compile(r"'?([\w.\-]+) is not in the ([\w.]+)::([\w ]+?) registry")
_ALL: List[MMEngineRegistry] = []


def _names(registry: MMEngineRegistry) -> List[str]:
    """Every type name a lookup from ``registry`` can reach (its own, then its parents')."""
    names: List[str] = []
    while registry is not None:
        registry.import_from_location()
        names += list(registry.module_dict)
        registry = registry.parent
    return names


# Layers MMDetection's configs take from compiled mmcv.ops, which mmcv-lite lacks.
_MMCV_OPS_MODELS = ('DCN', 'DCNv2', 'DeformConv2dPack', 'ModulatedDeformConv2dPack', 'CARAFE', 'CARAFEPack',
                    'SAC', 'MaskedConv2d', 'SimpleRoIAlign', 'PSAMask', 'CrissCrossAttention', 'ContextBlock')


def _normalised(name: str) -> str:
    return re.sub(r'[\s_\-.]', '', name).lower()


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute), case-insensitive."""
    a, b = a.lower(), b.lower()
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _spelling_variants(obj_type: str, ours: List[str], theirs: List[str]) -> List[str]:
    """Names that are the same word spelled differently: equal up to case / ``_`` / ``-`` (only
    those, when there are any), else a typo (one edit for names up to 6 characters, two for longer
    ones), ours before MMDetection's missing ones. Deliberately not a fuzzy ratio: ``GIoULoss``
    and ``L1Loss`` or ``ResNeXt`` and ``ResNet`` are different components."""
    key = _normalised(obj_type)
    same = [n for n in ours + theirs if _normalised(n) == key]
    if same:
        return same[:3]
    limit = 1 if len(obj_type) <= 6 else 2
    for names in (ours, theirs):
        close = [n for n in names if abs(len(n) - len(obj_type)) <= limit and _edit_distance(n, obj_type) <= limit]
        if close:
            return close[:3]
    return []


def mmdet_only_names(registry_name: str) -> List[str]:
    """Type names MMDetection registers in ``registry_name`` (e.g. ``'model'``) that rcnn_plugins
    does not have, computed now (components added here since the list was generated drop out)."""
    from .mmdet_type_names import MMDET_TYPE_NAMES
    mmdet = set(MMDET_TYPE_NAMES.get(registry_name, ()))
    if registry_name == 'model':
        mmdet.update(_MMCV_OPS_MODELS)
    ours = next((r for r in _ALL if r.name == registry_name), None)
    return sorted(mmdet - set(_names(ours))) if ours is not None else sorted(mmdet)


def unknown_type_hint(message: str) -> Optional[str]:
    """For mmengine's "X is not in the S::N registry" error message, one line: either "MMDetection
    has X, rcnn_plugins does not" (with the docs to read), or the registered names that are
    spelling variants of X; None for any other message."""
    match = _UNKNOWN_TYPE.search(message)
    if match is None:
        return None
    obj_type, scope, name = match.groups()
    registry = next((r for r in _ALL if r.scope == scope and r.name == name), None)
    if registry is None:  # mmengine's root registry of that name
        registry = next((r.parent for r in _ALL if r.parent is not None and r.parent.name == name), None)
    if registry is None:
        return None
    bare = obj_type.split('.')[-1]  # 'mmdet.MaskRCNN' -> 'MaskRCNN'
    missing = mmdet_only_names(name)
    if bare in missing:
        where = 'mmcv.ops (compiled; mmcv-lite has no ops)' if bare in _MMCV_OPS_MODELS else 'MMDetection 3.3'
        return (f'type={obj_type!r} is a {name} of {where} that rcnn_plugins does not have (it covers '
                "MMDetection's box-only two-stage detectors): see docs/MMDET_DIFFERENCES.md, "
                '"Not available", for what is missing.')
    names = sorted(set(_names(registry)))
    close = _spelling_variants(bare, names, missing)
    if close:
        hint = 'did you mean ' + ' or '.join(
            repr(c) + (' (an MMDetection type rcnn_plugins does not have)' if c in missing else '')
            for c in close) + '?'
    else:
        hint = f'registered names: {", ".join(names[:20])}{", ..." if len(names) > 20 else ""}.'
    return (f'type={obj_type!r} is not a registered {name} (scope {scope}): {hint} '
            'Fix the type in the config, or import the module that registers it (custom_imports).')


# Types MMDetection configs take from another OpenMMLab package's scope that we implement ourselves:
# '<scope>.<Type>' resolves to our '<Type>' while that package is not installed (when it is, its
# own registry answers, as in MMDetection).
FOREIGN_SCOPE_ALIASES = {'mmpretrain': ('TIMMBackbone',)}


def _installed(package: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(package) is not None


#: config keys whose ``type`` is not a registry name (``nms=dict(type='nms', iou_threshold=...)``,
#: Cascade RPN's ``adapt_cfg=dict(type='dilation' | 'offset')``, FPG's transitions ``type='conv' | ...``)
_NOT_REGISTRY_TYPES = ('nms', 'adapt_cfg', 'same_down_trans', 'same_up_trans', 'across_lateral_trans',
                       'across_down_trans', 'across_up_trans', 'across_skip_trans', 'output_trans')


def _all_registries() -> List[MMEngineRegistry]:
    """Our registries and every mmengine root registry (FUNCTIONS, ...), each once."""
    import mmengine.registry as roots
    found = {id(r): r for r in _ALL}
    for value in vars(roots).values():
        if isinstance(value, MMEngineRegistry):
            found.setdefault(id(value), value)
    return list(found.values())


def _nearest_registry_hint(obj_type: str) -> str:
    """:func:`unknown_type_hint`'s line for ``obj_type``, naming the registry of ours that holds
    the most similar name."""
    def best(registry):
        close = difflib.get_close_matches(obj_type, _names(registry), n=1, cutoff=0.0)
        return difflib.SequenceMatcher(None, obj_type, close[0]).ratio() if close else 0.0
    registry = max((r for r in _ALL if r.module_dict or r.parent is not None), key=best)
    return unknown_type_hint(f'{obj_type} is not in the {registry.scope}::{registry.name} registry') or \
        f'type={obj_type!r} is not a registered type'


def check_config_types(cfg) -> None:
    """Raise ``KeyError`` (one line, the nearest names) for the first ``type='X'`` in ``cfg`` that no
    registry knows, before anything is built (the Runner logs the whole config before it builds the
    model, so the error would come after hundreds of lines). Scoped types (``'mmdet.X'``) and
    non-string types are left to mmengine."""
    registries = _all_registries()
    known = set()
    for registry in registries:
        known.update(_names(registry))

    def walk(node, path):
        if isinstance(node, dict):
            obj_type = node.get('type')
            if isinstance(obj_type, str) and '.' not in obj_type and obj_type not in known \
                    and path.split('.')[-1] not in _NOT_REGISTRY_TYPES:
                raise KeyError(f'{path}: {_nearest_registry_hint(obj_type)}')
            for key, value in node.items():
                walk(value, f'{path}.{key}' if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{path}.{i}')

    walk(dict(cfg.items()) if hasattr(cfg, 'items') else cfg, '')


class Registry(MMEngineRegistry):
    """mmengine's ``Registry``; ``build`` of an unknown type suggests the nearest names, and
    ``get`` maps :data:`FOREIGN_SCOPE_ALIASES` (``'mmpretrain.TIMMBackbone'``) to our types."""

    def get(self, key):
        if isinstance(key, str) and '.' in key:
            scope, name = key.split('.', 1)
            if name in FOREIGN_SCOPE_ALIASES.get(scope, ()) and not _installed(scope):
                key = name
        return super().get(key)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _ALL.append(self)

    def build(self, cfg, *args, **kwargs):
        try:
            return super().build(cfg, *args, **kwargs)
        except KeyError as error:
            message = str(error.args[0]) if error.args else ''
            hint = None if 'did you mean' in message else unknown_type_hint(message)
            if hint is None:
                raise
            raise KeyError(hint) from None

def build_or_use(registry: MMEngineRegistry, cfg_or_obj, default_args: Optional[dict] = None):
    """A component from its config, or the component itself when it is already built.

    Constructors that take a sub-component (``bbox_head``, ``bbox_coder``, ``assigner``, ...)
    call this, so a component can be passed as an instance (tried in a notebook or a test
    without registering it, as torchvision's and Detectron2's constructors allow) or as a
    config dict (MMDetection's way). ``None`` stays ``None``; ``default_args`` only apply to a
    config.
    """
    if cfg_or_obj is None or not isinstance(cfg_or_obj, dict):
        return cfg_or_obj
    return registry.build(cfg_or_obj, default_args=default_args)


# Runner machinery: child registries let a config with default_scope='rcnn_plugins' reach
# mmengine's entries through the parent chain; LOOPS and HOOKS also hold our own (resumable train
# loops, atomic CheckpointHook, RNGStateHook, ...).
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope=SCOPE)
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS, scope=SCOPE)
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope=SCOPE, locations=['rcnn_plugins.engine.loops'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope=SCOPE, locations=['rcnn_plugins.engine.hooks'])

# Data
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope=SCOPE, locations=['rcnn_plugins.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMENGINE_DATA_SAMPLERS, scope=SCOPE,
                         locations=['rcnn_plugins.datasets.samplers'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE,
                      locations=['rcnn_plugins.datasets.transforms'])

# Models and the small building blocks they are assembled from (assigners, samplers, coders,
# prior generators, IoU calculators).
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['rcnn_plugins.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope=SCOPE)
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS, scope=SCOPE)
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, scope=SCOPE,
                      locations=['rcnn_plugins.models.task_modules'])

# Optimisation
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope=SCOPE)
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE,
                          locations=['rcnn_plugins.engine.optimizers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE)
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, scope=SCOPE)

# Evaluation and visualisation
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope=SCOPE, locations=['rcnn_plugins.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, scope=SCOPE, locations=['rcnn_plugins.evaluation'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, scope=SCOPE,
                       locations=['rcnn_plugins.visualization'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, scope=SCOPE,
                       locations=['rcnn_plugins.visualization'])
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, scope=SCOPE)

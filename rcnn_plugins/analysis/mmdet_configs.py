"""Check which MMDetection 3.x config files work here unchanged (logic of
``tools/misc/check_mmdet_configs.py``).

For each config: ``Config.fromfile``, ``default_scope='rcnn_plugins'``, the MMDetection-only bits
that docs/MMDET_DIFFERENCES.md tells a user to drop are dropped (today: ``custom_imports`` of
``mmpretrain.models``, whose ``TIMMBackbone`` is built in here; any other ``custom_imports`` is a
failure), then:

- the model is built with every ``init_cfg`` / ``pretrained`` disabled (nothing is read or
  downloaded; weights are not initialised either, only the modules are constructed);
- optionally its ``state_dict`` keys and shapes are compared with MMDetection's
  (``<keys_dir>/<folder>__<config>.json``, ``{"state_dict": {key: shape}}``), so a checkpoint of
  that config would load strictly;
- the train and test pipelines are built from ``TRANSFORMS``, and the dataset types (through
  wrappers) and evaluator / metric types are looked up in their registries (no data files needed).

Each config can be checked in a forked child process with a time limit (:func:`check_configs`), so
one config that hangs or crashes the interpreter is reported instead of stopping the run.
"""
import copy
import json
import multiprocessing
import os
import os.path as osp
import traceback
from typing import Callable, Dict, Iterable, List, Optional

#: ``custom_imports`` modules that docs/MMDET_DIFFERENCES.md says to drop (built in here).
DROPPABLE_IMPORTS = ('mmpretrain.models', )


def one_line(error: BaseException) -> str:
    """``ErrorType: first line of the message``."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    first = text.strip().splitlines()[0] if text.strip() else ''
    return f'{type(error).__name__}: {first}'


def strip_mmdet_only(cfg) -> List[str]:
    """Apply the documented user-side changes to an MMDetection config in place: the default scope,
    and ``custom_imports`` of packages whose types are built in here. Returns what was changed;
    raises ``ValueError`` for a ``custom_imports`` the docs do not say to drop."""
    changes = []
    cfg['default_scope'] = 'rcnn_plugins'
    custom = cfg.get('custom_imports')
    if custom:
        imports = custom.get('imports', [])
        imports = [imports] if isinstance(imports, str) else list(imports)
        other = [m for m in imports if m not in DROPPABLE_IMPORTS]
        if other:
            raise ValueError(f'custom_imports {other} is not something docs/MMDET_DIFFERENCES.md says to drop')
        cfg.pop('custom_imports')
        changes.append(f'dropped custom_imports {imports}')
    return changes


def disable_pretrained(node):
    """Copy of a model config with every ``init_cfg`` set to None and every ``pretrained`` off
    (``False`` where it was a bool, as timm takes it; else None)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'init_cfg':
                out[key] = None
            elif key == 'pretrained':
                out[key] = False if isinstance(value, bool) else None
            else:
                out[key] = disable_pretrained(value)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(disable_pretrained(v) for v in node)
    return node


def keys_file(keys_dir: str, config: str) -> str:
    """``keys/<folder>__<config>.json`` for ``<folder>/<config>.py``."""
    folder, name = osp.split(config)
    return osp.join(keys_dir, f'{osp.basename(folder)}__{osp.splitext(name)[0]}.json')


def compare_keys(state_dict, reference: Dict[str, list]) -> Optional[str]:
    """None when the keys and shapes equal ``reference``; else one line with the counts and the
    first differing key of each kind."""
    ours = {k: list(v.shape) for k, v in state_dict.items()}
    missing = [k for k in reference if k not in ours]
    extra = [k for k in ours if k not in reference]
    shape = [k for k in reference if k in ours and list(reference[k]) != ours[k]]
    if not (missing or extra or shape):
        return None
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing (e.g. {missing[0]})')
    if extra:
        parts.append(f'{len(extra)} unexpected (e.g. {extra[0]})')
    if shape:
        parts.append(f'{len(shape)} shape (e.g. {shape[0]} ours {ours[shape[0]]} '
                     f'MMDetection {list(reference[shape[0]])})')
    return 'keys differ: ' + '; '.join(parts)


def _dataset_types(dataset_cfg) -> List[str]:
    """Every ``type`` of a dataset config and the datasets it wraps."""
    if not isinstance(dataset_cfg, dict):
        return []
    types = [dataset_cfg['type']] if 'type' in dataset_cfg else []
    for sub in dataset_cfg.get('datasets', []) or []:
        types += _dataset_types(sub)
    if 'dataset' in dataset_cfg:
        types += _dataset_types(dataset_cfg['dataset'])
    return types


def _pipelines(dataset_cfg) -> List[list]:
    """The ``pipeline`` lists of a dataset config and of the datasets it wraps."""
    if not isinstance(dataset_cfg, dict):
        return []
    found = [dataset_cfg['pipeline']] if dataset_cfg.get('pipeline') else []
    for sub in dataset_cfg.get('datasets', []) or []:
        found += _pipelines(sub)
    if 'dataset' in dataset_cfg:
        found += _pipelines(dataset_cfg['dataset'])
    return found


def check_data(cfg) -> Optional[str]:
    """None when every transform of the train/val/test dataloaders builds and every dataset and
    evaluator type resolves; else the first error, one line."""
    from rcnn_plugins.registry import DATASETS, EVALUATOR, METRICS, TRANSFORMS
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        for dtype in _dataset_types(dataset):
            if DATASETS.get(dtype) is None:
                return f'{split}_dataloader: dataset type {dtype!r} is not registered'
        for pipeline in _pipelines(dataset):
            for transform in pipeline:
                try:
                    TRANSFORMS.build(copy.deepcopy(transform))
                except Exception as error:  # noqa: BLE001 - reported, not raised
                    return f'{split} pipeline {transform.get("type")!r}: {one_line(error)}'
        if split == 'train':
            continue
        evaluator = cfg.get(f'{split}_evaluator')
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator] if evaluator else []
        for metric in metrics:
            if 'metrics' in metric and metric.get('type', 'Evaluator') != 'Evaluator':
                if EVALUATOR.get(metric['type']) is None:
                    return f'{split}_evaluator: evaluator type {metric["type"]!r} is not registered'
            inner = metric.get('metrics', metric)
            for m in (inner if isinstance(inner, (list, tuple)) else [inner]):
                if METRICS.get(m.get('type')) is None:
                    return f'{split}_evaluator: metric type {m.get("type")!r} is not registered'
    return None


def check_config(config_dir: str, config: str, keys_dir: Optional[str] = None) -> dict:
    """Check one config (path relative to ``config_dir``). Returns a row: ``config``, ``loaded``,
    ``model_built``, ``keys_equal`` (None when there is no keys file), ``pipeline_ok``, ``error``
    (the first error, one line, or None), ``changes`` (what was stripped), ``model_class``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    row = dict(config=config, loaded=False, model_built=False, keys_equal=None, pipeline_ok=False,
               error=None, changes=[], model_class=None)

    def fail(message):
        if row['error'] is None:
            row['error'] = message

    try:
        # custom_imports are handled by strip_mmdet_only, not imported by mmengine
        cfg = Config.fromfile(osp.join(config_dir, config), import_custom_modules=False)
        row['changes'] = strip_mmdet_only(cfg)
        init_default_scope('rcnn_plugins')
        row['loaded'] = True
    except Exception as error:  # noqa: BLE001 - reported per config
        fail(f'load: {one_line(error)}')
        return row
    try:
        from rcnn_plugins.registry import MODELS
        model = MODELS.build(disable_pretrained(cfg.model.to_dict()))
        row['model_built'] = True
        row['model_class'] = type(model).__name__
        if keys_dir:
            path = keys_file(keys_dir, config)
            if osp.exists(path):
                with open(path) as f:
                    difference = compare_keys(model.state_dict(), json.load(f)['state_dict'])
                row['keys_equal'] = difference is None
                if difference:
                    fail(difference)
    except Exception as error:  # noqa: BLE001
        fail(f'model: {one_line(error)}')
    try:
        problem = check_data(cfg)
    except Exception as error:  # noqa: BLE001
        problem = f'data: {one_line(error)}'
    row['pipeline_ok'] = problem is None
    if problem:
        fail(problem)
    return row


def _child(conn, config_dir, config, keys_dir):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    try:
        row = check_config(config_dir, config, keys_dir)
    except BaseException as error:  # noqa: BLE001 - the parent reports it
        row = dict(config=config, error=f'crash: {one_line(error)}', trace=traceback.format_exc())
    conn.send(row)
    conn.close()


def check_config_isolated(config_dir: str, config: str, keys_dir: Optional[str] = None,
                          timeout: float = 300.0) -> dict:
    """:func:`check_config` in a forked child process, killed after ``timeout`` seconds (a hang or a
    crash of the interpreter becomes that config's error)."""
    context = multiprocessing.get_context('fork')
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, config_dir, config, keys_dir), daemon=True)
    process.start()
    child.close()
    row = None
    if parent.poll(timeout):
        try:
            row = parent.recv()
        except EOFError:
            row = None
    process.join(5 if row is not None else 0.1)
    if process.is_alive():
        process.kill()
        process.join()
    if row is None:
        reason = f'timeout after {timeout:g} s' if process.exitcode in (None, -9) else \
            f'crash: child exited with status {process.exitcode}'
        row = dict(config=config, error=reason)
    base = dict(config=config, loaded=False, model_built=False, keys_equal=None, pipeline_ok=False,
                error=None, changes=[], model_class=None)
    base.update(row)
    return base


def check_configs(config_dir: str, configs: Iterable[str], keys_dir: Optional[str] = None,
                  isolate: bool = True, timeout: float = 300.0,
                  progress: Optional[Callable] = None) -> List[dict]:
    """Rows of :func:`check_config` for each config; ``progress`` wraps the iterable (tqdm)."""
    configs = list(configs)
    if isolate:
        # import the registered components once here, so each forked child starts with them
        import rcnn_plugins.datasets  # noqa: F401
        import rcnn_plugins.evaluation  # noqa: F401
        import rcnn_plugins.models  # noqa: F401
    iterator = progress(configs) if progress else configs
    rows = []
    for config in iterator:
        if isolate:
            rows.append(check_config_isolated(config_dir, config, keys_dir, timeout))
        else:
            rows.append(check_config(config_dir, config, keys_dir))
    return rows


def find_configs(config_dir: str) -> List[str]:
    """Every ``*.py`` under ``config_dir`` outside ``_base_`` folders, relative, sorted."""
    found = []
    for root, dirs, files in os.walk(config_dir):
        dirs[:] = sorted(d for d in dirs if d != '_base_')
        found += [osp.relpath(osp.join(root, f), config_dir) for f in files if f.endswith('.py')]
    return sorted(found)


def totals(rows: List[dict]) -> dict:
    """Counts: configs, models built, keys equal (of those with a keys file), pipelines ok, and
    configs that passed every check."""
    with_keys = [r for r in rows if r.get('keys_equal') is not None]
    return dict(configs=len(rows), model_built=sum(bool(r['model_built']) for r in rows),
                keys_checked=len(with_keys), keys_equal=sum(bool(r['keys_equal']) for r in with_keys),
                pipeline_ok=sum(bool(r['pipeline_ok']) for r in rows),
                all_ok=sum(r['error'] is None for r in rows))


def format_table(rows: List[dict], width: int = 100) -> str:
    """The text table (config, model built, keys equal, pipeline ok, first error) and totals."""
    mark = {True: 'yes', False: 'NO', None: '-'}
    name_w = max([len('config')] + [len(r['config']) for r in rows])
    lines = [f'{"config":<{name_w}}  model  keys  pipeline  first error']
    for r in rows:
        error = (r['error'] or '')
        error = error if len(error) <= width else error[:width - 3] + '...'
        lines.append(f'{r["config"]:<{name_w}}  {mark[r["model_built"]]:<5}  {mark[r["keys_equal"]]:<4}  '
                     f'{mark[r["pipeline_ok"]]:<8}  {error}')
    t = totals(rows)
    lines.append(f'total {t["configs"]}: model built {t["model_built"]}, keys equal {t["keys_equal"]}/'
                 f'{t["keys_checked"]} with a keys file, pipeline ok {t["pipeline_ok"]}, all checks {t["all_ok"]}')
    return '\n'.join(lines)

"""Training logs: read mmengine's json scalar logs, plot curves, summarise iteration times.

mmengine writes one json object per logged step to ``WORK_DIR/<timestamp>/vis_data/<timestamp>.json``
(and the same lines to ``scalars.json``). Training lines carry ``lr``, the losses, ``time`` and
``data_time`` (seconds per iteration, averaged over the logger's window), ``epoch`` (epoch-based
loops only), ``iter`` and ``step`` (both the global iteration). Validation lines carry the metrics
(``coco/bbox_mAP``, ...) and ``step`` = the epoch (epoch-based) or the iteration (iteration-based).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np


def load_json_log(path: str) -> Dict[str, List[dict]]:
    """``{'train': [...], 'val': [...]}``: the log's training and validation lines, in file order."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such log; training writes it to '
                                f'WORK_DIR/<timestamp>/vis_data/<timestamp>.json')
    train, val = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{lineno}: not a json line ({e.msg}); pass the '
                                 f'vis_data/<timestamp>.json file, not the .log text file') from None
            (train if 'lr' in record or 'loss' in record else val).append(record)
    if not train and not val:
        raise ValueError(f'{path}: the log has no lines')
    return dict(train=train, val=val)


def _find_key(log: Dict[str, List[dict]], key: str):
    """The (split, full key) that ``key`` names: an exact key, or a metric by its short name
    (``bbox_mAP`` for ``coco/bbox_mAP``, as MMDetection's tool accepts)."""
    for split in ('train', 'val'):
        names = {k for record in log[split] for k in record}
        if key in names:
            return split, key
        matches = sorted(k for k in names if k.split('/')[-1] == key)
        if matches:
            return split, matches[0]
    available = sorted({k for split in log.values() for r in split for k in r} - {'epoch', 'iter', 'step'})
    raise KeyError(f'key {key!r} is not in the log; it has: {", ".join(available)}')


def default_curve_keys(log: Dict[str, List[dict]]) -> List[str]:
    """The keys worth plotting when none are asked for: the loss terms of the training lines (one
    point per logged iteration), in the order the log first has them; without training lines, the
    validation metrics. (MMDetection's default, ``bbox_mAP``, is one point per validation: a
    single dot for a run that validates once.)"""
    keys: List[str] = []
    for record in log['train']:
        keys += [k for k in record if k.startswith('loss') and k not in keys]
    if not keys:
        for record in log['val']:
            keys += [k for k in record if k not in ('epoch', 'iter', 'step') and k not in keys
                     and isinstance(record[k], (int, float))]
    return keys


def curve(log: Dict[str, List[dict]], key: str):
    """``(x, y, x_label, full_key)`` of one key: training keys against the iteration, validation
    metrics against ``step`` (epoch or iteration)."""
    split, full_key = _find_key(log, key)
    records = [r for r in log[split] if full_key in r]
    if split == 'train':
        x = np.array([r.get('iter', r['step']) for r in records])
        x_label = 'iteration'
    else:
        x = np.array([r['step'] for r in records])
        x_label = 'epoch' if any('epoch' in r for r in log['train']) else 'iteration'
    y = np.array([r[full_key] for r in records], dtype=np.float64)
    return x, y, x_label, full_key


def plot_curve(log_files: Sequence[str], keys: Optional[Sequence[str]] = None, out: Optional[str] = None,
               legend: Optional[Sequence[str]] = None, title: Optional[str] = None):
    """Plot ``keys`` of each log in one figure (one subplot per x-axis kind); save to ``out``.

    ``keys`` None: :func:`default_curve_keys` of the first log.
    Returns the matplotlib figure. ``legend`` names each (log, key) line; by default
    ``<log file name>: <key>`` (just ``<key>`` for one log).
    """
    import matplotlib
    if out is not None:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    logs = [load_json_log(path) for path in log_files]
    if not keys:
        keys = default_curve_keys(logs[0])
    n_lines = len(logs) * len(keys)
    if legend is not None and len(legend) != n_lines:
        raise ValueError(f'--legend needs one name per log and key ({len(logs)} x {len(keys)} = {n_lines}), '
                         f'got {len(legend)}')
    lines = []
    for i, (path, log) in enumerate(zip(log_files, logs)):
        for j, key in enumerate(keys):
            x, y, x_label, full_key = curve(log, key)
            if legend is not None:
                name = legend[i * len(keys) + j]
            else:
                name = full_key if len(logs) == 1 else f'{osp.basename(path)}: {full_key}'
            lines.append((x_label, x, y, name))

    x_labels = list(dict.fromkeys(line[0] for line in lines))
    fig, axes = plt.subplots(1, len(x_labels), figsize=(6.4 * len(x_labels), 4.8), squeeze=False)
    for ax, x_label in zip(axes[0], x_labels):
        for line_x_label, x, y, name in lines:
            if line_x_label == x_label:
                ax.plot(x, y, marker='o' if len(x) < 30 else None, markersize=3, label=name)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=100)
        plt.close(fig)
    return fig


def cal_train_time(log_file: str, include_outliers: bool = False) -> dict:
    """Seconds per training iteration, overall and per epoch (MMDetection's ``cal_train_time``).

    The first logged line of each epoch is left out unless ``include_outliers``: it includes the
    data loader's start-up. Logs of iteration-based runs count as one epoch.
    Returns ``dict(avg_iter_time, std_over_epochs, slowest_epoch, fastest_epoch, per_epoch)``
    with ``per_epoch`` mapping the epoch to its mean ``time``.
    """
    train = load_json_log(log_file)['train']
    times: Dict[int, List[float]] = {}
    for record in train:
        if 'time' in record:
            times.setdefault(int(record.get('epoch', 1)), []).append(float(record['time']))
    if not times:
        raise ValueError(f'{log_file}: no training line has "time"')
    per_epoch = {}
    for epoch, values in times.items():
        if not include_outliers and len(values) > 1:
            values = values[1:]
        per_epoch[epoch] = float(np.mean(values))
    means = np.array(list(per_epoch.values()))
    return dict(avg_iter_time=float(means.mean()), std_over_epochs=float(means.std()),
                slowest_epoch=max(per_epoch, key=per_epoch.get),
                fastest_epoch=min(per_epoch, key=per_epoch.get), per_epoch=per_epoch)

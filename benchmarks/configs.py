"""Several detector configs side by side on the same real batches: the driver behind
``tools/benchmark_configs.py``.

Each config's model is built (random init, seed 0) and, per round, every model runs one training
step (forward, backward, the config's optimiser update) and one inference batch on the same data,
the models taking turns so that a machine slowing down mid-run affects all of them alike. The table
gives medians and each model's ratio to the first config's: a variant's cost per iteration, measured
in one run (the demo's wall times differ with whatever else the machine does).
"""
import argparse
import json
import os
import statistics
import time
from typing import Dict, List

import torch
from mmengine.config import Config

from rcnn_plugins.engine.step_timer import build_for_training, take_batches
from .cli import cpu_model
from .cpu_table import isa_flags


def _data_root_options(data: str) -> dict:
    root = data.rstrip('/') + '/'
    return {'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root}


def build(path: str, data: str, amp: bool):
    """(config, model, optim_wrapper) of a config file, weights from scratch, data under ``data``."""
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(_data_root_options(data))
    model, optim_wrapper = build_for_training(cfg, amp)
    return cfg, model, optim_wrapper


def run_configs(configs: List[str], data: str, rounds: int, warmup: int, amp: bool, log=print) -> dict:
    """Median seconds per training step and per inference batch of each config, and ratios to the first."""
    models = [build(path, data, amp) for path in configs]
    train_batches = take_batches(models[0][0], 'train', rounds + warmup)
    val_batches = take_batches(models[0][0], 'val', rounds + warmup)
    times: Dict[str, Dict[str, list]] = {path: dict(train=[], infer=[]) for path in configs}
    autocast = torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp)
    for i in range(rounds + warmup):
        for path, (_, model, optim_wrapper) in zip(configs, models):
            model.train()
            start = time.perf_counter()
            model.train_step(train_batches[i % len(train_batches)], optim_wrapper)  # the wrapper autocasts when amp
            train_s = time.perf_counter() - start
            model.eval()
            start = time.perf_counter()
            with torch.no_grad(), autocast:
                model.test_step(val_batches[i % len(val_batches)])  # a small val set repeats
            infer_s = time.perf_counter() - start
            if i >= warmup:
                times[path]['train'].append(train_s)
                times[path]['infer'].append(infer_s)
        log(f'round {i + 1}/{rounds + warmup} done')
    medians = {path: {kind: statistics.median(v) for kind, v in t.items()} for path, t in times.items()}
    first = medians[configs[0]]
    rows = [dict(config=path, train_s=m['train'], infer_s=m['infer'], train_ratio=m['train'] / first['train'],
                 infer_ratio=m['infer'] / first['infer']) for path, m in medians.items()]
    return dict(cpu=cpu_model(), isa=isa_flags(), threads=torch.get_num_threads(), precision='bf16' if amp else 'fp32',
                rounds=rounds, warmup=warmup, train_batch=len(train_batches[0]['inputs']),
                infer_batch=len(val_batches[0]['inputs']), load_avg=os.getloadavg(), rows=rows)


def format_table(result: dict) -> str:
    lines = [f"CPU: {result['cpu']} ({', '.join(result['isa']) or 'no listed ISA flags'}), "
             f"{result['threads']} threads, {result['precision']}, medians of {result['rounds']} rounds "
             f"(after {result['warmup']} warm-up), train batch {result['train_batch']}, "
             f"inference batch {result['infer_batch']}; load average at the end {result['load_avg'][0]:.2f}",
             '',
             '| config | train step (s) | x first | inference batch (s) | x first |',
             '|---|---|---|---|---|']
    for row in result['rows']:
        lines.append(f"| `{row['config']}` | {row['train_s']:.3f} | {row['train_ratio']:.2f} | "
                     f"{row['infer_s']:.3f} | {row['infer_ratio']:.2f} |")
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+', help='configs to compare; ratios are against the first')
    parser.add_argument('--data', default='data/demo', help='data_root of the configs (default: the demo data)')
    parser.add_argument('--rounds', type=int, default=20, help='timed rounds (one step of every model each)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--precision', choices=['auto', 'bf16', 'fp32'], default='auto',
                        help='auto: bf16 autocast where the CPU has native bf16 (as the demo), else fp32')
    parser.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch\'s)')
    parser.add_argument('--json', help='also write the result here')
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    from rcnn_plugins.engine.optimizers import cpu_bf16_supported
    if args.precision == 'bf16' and not cpu_bf16_supported():
        raise SystemExit('error: --precision bf16: this CPU has no native bf16 (AVX-512 BF16 / AMX); '
                         'emulated bf16 is hundreds of times slower. Use --precision fp32.')
    amp = args.precision == 'bf16' or (args.precision == 'auto' and cpu_bf16_supported())
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the demo: from-scratch models' tiny values take x86's slow path
    for path in args.configs:
        if not os.path.isfile(path):
            raise SystemExit(f'error: {path}: no such config file')
    result = run_configs(args.configs, args.data, args.rounds, args.warmup, amp)
    print(format_table(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)

"""The benchmark driver behind ``tools/benchmark.py``: argument parser, the measurement plan, the table.

Rows: for each variant (``variants.py``: fp32 / bf16 (fp16 on a GPU), eager / fast path) and
kind (inference at each ``--infer-batches``, one training step at ``--train-batch``) both models
run interleaved on the same batch. Each row gives ours/torchvision in that same variant, and,
for the speed targets (docs/SPEED.md), ours against torchvision's eager fp32 row of the same batch.
"""
import argparse
import json
import os
import platform
import time

import torch

from .inputs import make_batch, parse_size
from .memory import measure_memory, memory_child
from .models import DEFAULT_CONFIG, REMAINING_DIFFERENCES, build_models, count_params, load_config
from .profile import profile_models
from .steps import Stepper, _summary, flush_denormals, run_interleaved
from .variants import VARIANTS, apply_variant, parse_variant, variant_label


def _load_avg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _steppers(ours, tv, batch, size, device, variant, kind):
    data = make_batch(batch, size)
    amp, _ = parse_variant(variant)
    return [Stepper('ours', apply_variant('ours', ours, variant, kind), data, device, amp),
            Stepper('torchvision', apply_variant('torchvision', tv, variant, kind), data, device, amp)]


def measurement_plan(only, infer_batches, train_batch, variants=None):
    """``[(kind, batch, variant)]`` in run order. With ``variants`` every row gets all of them;
    by default the first inference batch gets fp32, fp32-fast and amp-fast, the other inference
    batches and the training step fp32 and amp-fast (a 2-core CPU needs ~25 s per 800x1333 fp32
    training step and model: all four variants everywhere would take ~15 minutes)."""
    plan = []
    if only in (None, 'infer'):
        for i, b in enumerate(infer_batches):
            default = ['fp32', 'fp32-fast', 'amp-fast'] if i == 0 else ['fp32', 'amp-fast']
            plan += [('infer', b, v) for v in (variants or default)]
    if only in (None, 'train'):
        plan += [('train', train_batch, v) for v in (variants or ['fp32', 'amp-fast'])]
    return plan


def run_benchmark(args, log=print, models=None):
    """Everything the CLI measures; returns the result dict (also used by the tests).

    ``models``: an ``(ours, tv, info)`` triple from ``build_models`` to reuse (tests); built here
    from ``args`` when None.
    """
    device = args.device
    on_cuda = str(device).startswith('cuda')
    if args.iters is None:
        args.iters = 20 if on_cuda else 1
    if args.warmup is None:
        args.warmup = 5 if on_cuda else 1
    size = parse_size(args.size)
    args.size = size
    torch.set_num_threads(args.threads or torch.get_num_threads())
    flush_denormals()
    bf16_ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    infer_batches = [args.batch] if args.batch else args.infer_batches
    train_batch = args.batch or args.train_batch
    plan = measurement_plan(args.only, infer_batches, train_batch, args.variants)
    if not on_cuda and not bf16_ok and any(parse_variant(v)[0] for _, _, v in plan):
        log('NOTE: this CPU has no native bf16 (emulated bf16 convolutions are ~400x slower): '
            'skipping the bf16 rows')
        plan = [(k, b, v) for k, b, v in plan if not parse_variant(v)[0]]
    variants = list(dict.fromkeys(v for _, _, v in plan))
    if models is None:
        cfg = load_config(args.config, args.cfg_options, args.exact_config)
        models = build_models(cfg, size, device, keep_resize=args.tv_resize)
    ours, tv, info = models
    if info['weights_not_shared']:
        log(f'WARNING: {len(info["weights_not_shared"])} of our tensors got no torchvision weight: '
            f'{info["weights_not_shared"][:6]} ...')
    result = dict(meta=dict(
        device=device, size=list(size), threads=torch.get_num_threads(), variants=variants,
        torch=torch.__version__, python=platform.python_version(), cpu=cpu_model(),
        cpu_bf16=bf16_ok, load_avg_start=_load_avg(), iters=args.iters, warmup=args.warmup,
        params_ours=count_params(ours), params_torchvision=count_params(tv),
        weights_copied=info['weights_copied'], weights_not_shared=info['weights_not_shared'],
        tv_resize_bypassed=not args.tv_resize,
        amp_dtype='float16' if on_cuda else 'bfloat16'))
    log(f'device={device} cpu="{cpu_model()}" native bf16={bf16_ok} size={size[0]}x{size[1]} '
        f'threads={torch.get_num_threads()} load={_load_avg()}')
    log(f'params (total, trainable): ours {count_params(ours)}  torchvision {count_params(tv)}')
    only = args.only

    if args.profile:
        kinds = [only] if only in ('infer', 'train') else ['infer', 'train']
        variant = args.profile_variant or 'fp32'
        result['profile'] = {}
        for kind in kinds:
            b = infer_batches[0] if kind == 'infer' else train_batch
            result['profile'].update(profile_models(_steppers(ours, tv, b, size, device, variant, kind), [kind],
                                                    args.profile_iters, args.trace_dir, log=log))
        result['meta']['load_avg_end'] = _load_avg()
        return result

    for kind, b, variant in plan:
        label = f'{kind} b{b} {variant_label(variant, device)}'
        t = run_interleaved(_steppers(ours, tv, b, size, device, variant, kind), kind, args.warmup,
                            args.iters, label, log)
        o, v = _summary(t['ours'], b), _summary(t['torchvision'], b)
        result[f'{kind}_b{b}_{variant}'] = dict(kind=kind, batch=b, variant=variant, ours=o, torchvision=v,
                                               ratio=v['median_s'] / o['median_s'])
    for kind, b, variant in plan:
        base, row = result.get(f'{kind}_b{b}_fp32'), result[f'{kind}_b{b}_{variant}']
        if base is not None:
            row['ratio_vs_tv_fp32'] = base['torchvision']['median_s'] / row['ours']['median_s']
            row['tv_ratio_vs_tv_fp32'] = base['torchvision']['median_s'] / row['torchvision']['median_s']
    if only in (None, 'memory'):
        result['memory'] = {}
        modes = getattr(args, 'memory_modes', None) or ('infer', 'train')
        for mode, b in (('infer', infer_batches[0]), ('train', train_batch)):
            if mode not in modes:
                continue
            for variant in args.memory_variants:
                if on_cuda or bf16_ok or not parse_variant(variant)[0]:
                    result['memory'][f'{mode}_b{b}_{variant}'] = measure_memory(ours, tv, mode, b, variant, args, log)
    result['meta']['load_avg_end'] = _load_avg()
    return result


def format_table(result):
    """One line per (kind, batch, variant) and per memory measurement."""
    device = result['meta']['device']
    rows = [('row', 'ours', 'torchvision', 'tv/ours', 'vs tv fp32: ours', 'tv')]
    for key, r in result.items():
        if not isinstance(r, dict) or r.get('kind') not in ('infer', 'train'):
            continue
        what = 'inference s/batch' if r['kind'] == 'infer' else 'train step s'
        rows.append((f'{what}, b{r["batch"]}, {variant_label(r["variant"], device)}',
                     f'{r["ours"]["median_s"]:.3f}', f'{r["torchvision"]["median_s"]:.3f}', f'x{r["ratio"]:.2f}',
                     f'x{r["ratio_vs_tv_fp32"]:.2f}' if 'ratio_vs_tv_fp32' in r else '-',
                     f'x{r["tv_ratio_vs_tv_fp32"]:.2f}' if 'tv_ratio_vs_tv_fp32' in r else '-'))
    for key, r in result.get('memory', {}).items():
        m = r['metric']
        unit = 'CUDA max allocated' if 'cuda' in m else 'peak RSS'
        mode, rest = key.split('_b', 1)
        b, variant = rest.split('_', 1)
        rows.append((f'{unit} MiB, {mode} b{b}, {variant_label(variant, device)}', f'{r["ours"][m]:.0f}',
                     f'{r["torchvision"][m]:.0f}', f'{r["ratio"]:.2f} (ours/tv)', '', ''))
        d = m.replace('peak', 'delta')
        rows.append(('  of which the step (over model+inputs)', f'{r["ours"][d]:.0f}',
                     f'{r["torchvision"][d]:.0f}', f'{r["delta_ratio"]:.2f} (ours/tv)', '', ''))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def build_parser():
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Our Faster R-CNN R50-FPN against torchvision\'s, same work, '
                                'same weights, interleaved runs (see benchmarks/).')
    p.add_argument('--device', default='cpu', help='cpu or cuda')
    p.add_argument('--variants', nargs='+', choices=VARIANTS, default=None,
                   help='variants of every row (amp = bf16 on CPU, fp16 on CUDA); default: fp32, fp32-fast '
                        'and amp-fast at the first inference batch, fp32 and amp-fast elsewhere')
    p.add_argument('--batch', type=int, default=None,
                   help='one batch size for everything (overrides --infer-batches / --train-batch)')
    p.add_argument('--infer-batches', type=int, nargs='+', default=[1, 4])
    p.add_argument('--train-batch', type=int, default=2)
    p.add_argument('--size', default='800x1333', help='image size HxW (default 800x1333)')
    # On a 2-core CPU one 800x1333 fp32 training step of either model takes ~10 s or more, so the
    # CPU defaults are small enough to keep the whole default run within ~5 minutes.
    p.add_argument('--iters', type=int, default=None,
                   help='timed iterations per model and row (default: cpu 1, cuda 20)')
    p.add_argument('--warmup', type=int, default=None,
                   help='warm-up iterations per model and row (default: cpu 1, cuda 5)')
    p.add_argument('--memory-iters', type=int, default=1, help='steps run in each memory child')
    p.add_argument('--only', choices=['infer', 'train', 'memory'], default=None)
    p.add_argument('--memory-sequential', dest='memory_parallel', action='store_false',
                   help='run the two memory children one after the other (default: side by side; '
                        'peaks are per process, so that only saves wall time)')
    p.add_argument('--memory-modes', nargs='+', choices=['infer', 'train'], default=['train'],
                   help='which steps the memory measurement covers (default: train)')
    p.add_argument('--memory-variants', nargs='+', choices=VARIANTS, default=['fp32'],
                   help='variants whose peak memory is measured (default: fp32)')
    p.add_argument('--json', default=None, help='write the result dict here')
    p.add_argument('--config', default=DEFAULT_CONFIG)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='override our config (torchvision follows), e.g. model.test_cfg.rpn.max_per_img=100')
    p.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch\'s)')
    p.add_argument('--exact-config', action='store_true',
                   help="benchmark our config as it is (BN affine weights trained, RoIAlign sampling_ratio=0, "
                        "MMDetection's numerics) instead of matching torchvision's work (frozen BN, 2x2 samples)")
    p.add_argument('--tv-resize', action='store_true',
                   help='keep torchvision\'s (scale 1.0) resize inside its transform')
    p.add_argument('--profile', action='store_true', help='torch.profiler top ops instead of timing')
    p.add_argument('--profile-iters', type=int, default=2)
    p.add_argument('--profile-variant', choices=VARIANTS, default=None,
                   help='variant to profile (default: fp32)')
    p.add_argument('--trace-dir', default=None, help='with --profile: write chrome traces here')
    # Internal: memory child process.
    p.add_argument('--_memory-child', dest='which', default=None, help=argparse.SUPPRESS)
    p.add_argument('--_state-dict', dest='state_dict', default=None, help=argparse.SUPPRESS)
    p.add_argument('--_mode', dest='mode', default=None, help=argparse.SUPPRESS)
    p.add_argument('--_variant', dest='variant', default='fp32', help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.which:
        memory_child(args)
        return None
    t0 = time.perf_counter()
    result = run_benchmark(args)
    if not args.profile:
        print('\n' + format_table(result))
        meta = result['meta']
        print(f'\nmachine: {meta["cpu"]} (native bf16: {meta["cpu_bf16"]}), {meta["threads"]} threads, '
              f'device {args.device}, load average start {meta["load_avg_start"]} end {meta["load_avg_end"]}')
        print('tv/ours: torchvision time / ours in the same row (>1: ours faster); "vs tv fp32": '
              'torchvision\'s eager fp32 time at that batch / the row\'s time, for ours and for torchvision')
        print('weights: torchvision init copied into ours '
              f'({meta["weights_copied"]} tensors); box classifier scaled so scores clear 0.05')
    print('\ndifferences that remain:')
    for d in REMAINING_DIFFERENCES:
        print(f'  - {d}')
    print(f'\ntotal wall time {time.perf_counter() - t0:.1f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()

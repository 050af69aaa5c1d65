"""``tools/benchmark.py --cpu-table``: the CPU latency table, every way this project can run a model.

For R50-FPN at 800x1333 and the demo model at its size (176x176), batch 1, one process, the rows
run interleaved on the same input (round-robin, medians), so load on a shared machine hits every
row alike; each row's speed is given as a ratio to the reference row of its model (torchvision's
eager fp32 ``fasterrcnn_resnet50_fpn`` with the same weights for R50-FPN; ours eager fp32 for the
demo model, which torchvision does not build):

    torchvision eager fp32 | ours eager fp32 (--exact) | ours default (BN folded + channels-last)
    | ours bf16 fast (--amp; CPUs with native bf16 only) | onnxruntime fp32 | OpenVINO fp32
    | onnxruntime int8 | OpenVINO int8

The header names the CPU, its ISA flags (AVX2 / AVX-512 / BF16 / VNNI / AMX) and the threads.
The mAP column is filled from the accuracy runs (``tools/test.py --backend ... / --amp`` and
``tools/deployment/quantize.py`` on a trained demo model); this command measures speed only
(random weights for R50-FPN, ``--demo-checkpoint`` for the demo model's weights).
"""
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

ISA_FLAGS = (('avx2', 'AVX2'), ('avx512f', 'AVX-512'), ('avx512_bf16', 'AVX512-BF16'),
             ('avx512_vnni', 'AVX512-VNNI'), ('avx_vnni', 'AVX-VNNI'), ('amx_bf16', 'AMX-BF16'),
             ('amx_int8', 'AMX-INT8'))


def isa_flags() -> List[str]:
    """The ISA extensions relevant to inference that /proc/cpuinfo lists."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:
        return []
    return [name for flag, name in ISA_FLAGS if flag in flags]


def _backend_rows(ours, x: torch.Tensor, hw: np.ndarray, workdir: str, calib, log) -> Dict[str, Callable]:
    """Exported fp32 / int8 rows on onnxruntime and OpenVINO (those installed)."""
    from rcnn_plugins.deployment.backends import BackendSession, MissingExtraError, export_for_backend, require_backend
    from rcnn_plugins.deployment.quantize import quantize_onnx
    rows: Dict[str, Callable] = {}
    try:
        require_backend('onnxruntime')
    except MissingExtraError as err:
        log(f'  no exported rows: {err}')
        return rows
    fp32 = os.path.join(workdir, 'fp32.onnx')
    t = time.time()
    export_for_backend(ours, fp32, example_hw=tuple(x.shape[-2:]))
    int8 = os.path.join(workdir, 'int8.onnx')
    quantize_onnx(fp32, int8, calib)
    log(f'  exported and quantized in {time.time() - t:.0f} s')
    image = x.numpy()
    for backend in ('onnxruntime', 'openvino'):
        try:
            require_backend(backend)
        except MissingExtraError as err:
            log(f'  skipped {backend}: {err}')
            continue
        for precision, path in (('fp32', fp32), ('int8', int8)):
            session = BackendSession(path, backend)
            rows[f'{backend} {precision}'] = (lambda s=session: s(image, hw))
    return rows


def measure(rows: Dict[str, Callable], rounds: int, log) -> Dict[str, float]:
    """Median seconds per call of each row, round-robin after one warm-up round."""
    times: Dict[str, List[float]] = {name: [] for name in rows}
    for r in range(rounds + 1):
        names = list(rows) if r % 2 == 0 else list(rows)[::-1]
        for name in names:
            t = time.perf_counter()
            rows[name]()
            dt = time.perf_counter() - t
            if r > 0:
                times[name].append(dt)
        log(f'  round {r}/{rounds} done')
    return {name: statistics.median(t) for name, t in times.items()}


def model_rows(name: str, cfg, size, with_tv: bool, rounds: int, log, checkpoint: Optional[str] = None) -> dict:
    """Build the rows of one model and time them; returns {row: median seconds} and the reference."""
    from benchmarks.inputs import make_batch, ours_data
    from benchmarks.models import build_models, build_ours
    from benchmarks.steps import Stepper
    from benchmarks.variants import apply_variant
    from rcnn_plugins.engine.optimizers import cpu_bf16_supported
    log(f'{name}: building')
    if with_tv:
        ours, tv, _ = build_models(cfg, size)
    else:
        ours, tv = build_ours(cfg), None
        if checkpoint:
            from mmengine.runner import load_checkpoint

            from rcnn_plugins.engine import setup_runtime
            setup_runtime()  # checkpoints read through the safe loader (as every entry point does)
            load_checkpoint(ours, checkpoint, map_location='cpu', logger='silent')
    ours.eval()
    batch = make_batch(1, size, num_classes=cfg.model.roi_head.bbox_head.num_classes)
    rows: Dict[str, Callable] = {}
    if tv is not None:
        rows['torchvision eager fp32'] = Stepper('torchvision', tv.eval(), batch).infer_fn()
    rows['ours eager fp32 (--exact)'] = Stepper('ours', ours, batch).infer_fn()
    rows['ours default fp32 (fast path)'] = Stepper('ours', apply_variant('ours', ours, 'fp32-fast', 'infer'),
                                                    batch).infer_fn()
    if cpu_bf16_supported():
        rows['ours bf16 fast (--amp)'] = Stepper('ours', apply_variant('ours', ours, 'amp-fast', 'infer'), batch,
                                                 amp=True).infer_fn()
    with torch.no_grad():
        data = ours.data_preprocessor(ours_data(batch), False)
    x = data['inputs'][:, :, :, :].float().contiguous()
    hw = np.array(data['data_samples'][0].img_shape[:2], dtype=np.float32)
    calib = [(x.numpy(), hw)]
    with tempfile.TemporaryDirectory(prefix='rcnn_cpu_table_') as workdir:
        rows.update(_backend_rows(ours, x, hw, workdir, calib, log))
        medians = measure(rows, rounds, log)
    reference = 'torchvision eager fp32' if tv is not None else 'ours eager fp32 (--exact)'
    return dict(model=name, size=list(size), medians_s=medians, reference=reference)


def format_table(result: dict) -> str:
    lines = [f"CPU: {result['cpu']}; ISA: {', '.join(result['isa']) or 'n/a'}; torch threads: {result['threads']}; "
             f"load average at start: {result['load']}", '',
             '| model | input | row | ms / image | speed vs reference | mAP@0.5 (demo data) |',
             '|---|---|---|---:|---:|---:|']
    for m in result['models']:
        ref = m['medians_s'][m['reference']]
        for row, t in m['medians_s'].items():
            mark = ' (reference)' if row == m['reference'] else ''
            map50 = m.get('map50', {}).get(row)
            lines.append(f"| {m['model']} | {m['size'][0]}x{m['size'][1]} | {row}{mark} | {1000 * t:.0f} | "
                         f"x{ref / t:.2f} | {'n/a' if map50 is None else f'{map50:.3f}'} |")
    return '\n'.join(lines)


def run_cpu_table(r50_config: str, demo_config: str, threads: int, rounds: int, log=print,
                  demo_checkpoint: Optional[str] = None, models=('r50', 'demo')) -> dict:
    from mmengine.config import Config

    from benchmarks.cli import cpu_model
    from benchmarks.models import load_config
    from benchmarks.steps import flush_denormals
    torch.set_num_threads(threads)
    flush_denormals()
    result = dict(cpu=cpu_model(), isa=isa_flags(), threads=threads,
                  load=[round(v, 1) for v in os.getloadavg()], models=[])
    if 'r50' in models:
        result['models'].append(model_rows('R50-FPN', load_config(r50_config), (800, 1333), True, rounds, log))
    if 'demo' in models:
        result['models'].append(model_rows('demo R18-FPN', Config.fromfile(demo_config), (176, 176), False,
                                           rounds, log, demo_checkpoint))
    return result


def main(argv=None) -> None:
    """``tools/benchmark.py --cpu-table [--threads N] [--rounds N] [--models r50 demo] [--json FILE]``."""
    import argparse
    import json

    from benchmarks.models import DEFAULT_CONFIG
    parser = argparse.ArgumentParser(description='CPU latency table (see benchmarks/cpu_table.py)')
    parser.add_argument('--cpu-table', action='store_true')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--models', nargs='+', choices=['r50', 'demo'], default=['r50', 'demo'])
    parser.add_argument('--r50-config', default=DEFAULT_CONFIG)
    parser.add_argument('--demo-config', default='configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py')
    parser.add_argument('--demo-checkpoint', default=None)
    parser.add_argument('--json', default=None, help='also write the result here')
    args = parser.parse_args(argv)
    result = run_cpu_table(args.r50_config, args.demo_config, args.threads, args.rounds,
                           demo_checkpoint=args.demo_checkpoint, models=tuple(args.models))
    print(format_table(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)

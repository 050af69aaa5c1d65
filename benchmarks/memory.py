"""Peak memory of one step per model, each model in its own child process (same inputs, same weights).

The child is ``python -m benchmarks.cli --_memory-child NAME ...``: it rebuilds the model,
loads the shared weights from a temporary file, runs the step and prints ``MEMORY_RESULT {json}``.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from .inputs import make_batch, parse_size
from .models import REPO_ROOT, build_ours, build_tv, load_config
from .steps import Stepper, flush_denormals
from .variants import apply_variant, parse_variant

# The folder holding the rcnn_plugins package.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _proc_status_kb(field):
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0); returns False where not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def memory_child(args):
    """Runs in the child: build one model with the shared weights, run the step, report the peak."""
    flush_denormals()
    torch.manual_seed(0)
    device = args.device
    cfg = load_config(args.config, args.cfg_options, args.exact_config)
    size = parse_size(args.size)
    if args.which == 'ours':
        model = build_ours(cfg, device)
    else:
        model = build_tv(cfg, size, device, keep_resize=args.tv_resize)
    model.load_state_dict(torch.load(args.state_dict, map_location=device, mmap=True))
    batch = make_batch(args.batch, size)
    amp, _ = parse_variant(args.variant)
    model = apply_variant(args.which, model, args.variant, args.mode)
    stepper = Stepper(args.which, model, batch, device, amp)
    fn = stepper.infer_fn() if args.mode == 'infer' else stepper.train_fn()
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    base_rss_kb = _proc_status_kb('VmRSS')
    reset_ok = _reset_peak_rss()
    for _ in range(max(args.iters, 1)):
        fn()
        if args.mode == 'train':
            fn = stepper.train_fn()
    out = dict(which=args.which, mode=args.mode, variant=args.variant, batch=args.batch,
               base_rss_mb=(base_rss_kb or 0) / 1024,
               hwm_reset=reset_ok)
    hwm = _proc_status_kb('VmHWM')
    if hwm is None:   # not Linux: ru_maxrss (kB on Linux, bytes on macOS)
        import resource
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = hwm // 1024 if sys.platform == 'darwin' else hwm
    out['peak_rss_mb'] = hwm / 1024
    out['delta_rss_mb'] = out['peak_rss_mb'] - out['base_rss_mb']
    if str(device).startswith('cuda'):
        out['peak_cuda_mb'] = torch.cuda.max_memory_allocated() / 2**20
        out['delta_cuda_mb'] = (torch.cuda.max_memory_allocated() - base) / 2**20
    print('MEMORY_RESULT ' + json.dumps(out), flush=True)


def _fmt_opt(v):
    """Back to the command-line form DictAction parses (lists/tuples without spaces)."""
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(_fmt_opt(x) for x in v) + ']'
    return str(v)


def _collect_child(name, proc, t0, res, mode, batch, log):
    out, err = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith('MEMORY_RESULT ')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'memory child for {name} failed (rc={proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}')
    res[name] = json.loads(lines[-1][len('MEMORY_RESULT '):])
    log(f'  [memory {mode} b{batch} {res[name]["variant"]}] {name:<11} peak RSS {res[name]["peak_rss_mb"]:8.1f} MiB '
        f'(+{res[name]["delta_rss_mb"]:.1f} over model+inputs) in {time.perf_counter() - t0:.1f} s')


def measure_memory(ours, tv, mode, batch, variant, args, log=print):
    """Peak memory of each model for one ``mode`` step, each in its own child process.

    Children run one after the other unless ``args.memory_parallel`` (peaks are per process, so
    running them side by side changes only the wall time; the tests use it to stay short).
    """
    res = {}
    with tempfile.TemporaryDirectory(prefix='rcnn_bench_') as tmp:
        procs = {}
        for name, model in (('ours', ours), ('torchvision', tv)):
            path = os.path.join(tmp, f'{name}.pth')
            torch.save(model.state_dict(), path)
            cmd = [sys.executable, '-m', 'benchmarks.cli', '--_memory-child', name,
                   '--_state-dict', path, '--_mode', mode, '--_variant', variant, '--batch', str(batch),
                   '--size', f'{args.size[0]}x{args.size[1]}', '--device', args.device,
                   '--iters', str(args.memory_iters), '--config', args.config]
            if args.tv_resize:
                cmd.append('--tv-resize')
            if args.exact_config:
                cmd.append('--exact-config')
            if args.cfg_options:
                cmd += ['--cfg-options'] + [f'{k}={_fmt_opt(v)}' for k, v in args.cfg_options.items()]
            # The child imports this package from where the parent did (a checkout without install too).
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                [PACKAGE_PARENT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
            procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            cwd=REPO_ROOT, env=env), time.perf_counter())
            if not getattr(args, 'memory_parallel', False):
                _collect_child(name, *procs[name], res, mode, batch, log)
        for name, (proc, t0) in procs.items():
            if name not in res:
                _collect_child(name, proc, t0, res, mode, batch, log)
    key = 'peak_cuda_mb' if str(args.device).startswith('cuda') else 'peak_rss_mb'
    res['metric'] = key
    res['ratio'] = res['ours'][key] / res['torchvision'][key]
    dkey = key.replace('peak', 'delta')
    res['delta_ratio'] = res['ours'][dkey] / max(res['torchvision'][dkey], 1e-6)
    return res


# --------------------------------------------------------------------------------------------

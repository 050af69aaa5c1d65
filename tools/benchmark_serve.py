"""Throughput and latency of ``rcnn-serve`` under concurrent clients, dynamic batching on and off.

    python tools/benchmark_serve.py CONFIG [CHECKPOINT] [--concurrency 1 4 16] [--duration 10]
        [--max-batch 8] [--max-wait-ms 10] [--image-size 480 640] [--soak 0] [--threads N]

For each mode (batching on: ``--max-batch``/``--max-wait-ms``; off: ``--max-batch 1``) it starts
the server on a free loopback port, warms it up, then runs each concurrency level for
``--duration`` seconds (every client posts JPEGs back to back) and prints images/s and p50 / p99
latency; and the server's resident memory after warm-up, after the load and, with ``--soak S``,
after S more seconds at the highest concurrency (a leak shows as growth). Without a checkpoint
the model keeps random weights (speed does not depend on them, except through the number of
boxes kept: a random model keeps up to ``max_per_img``).
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import requests

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None)
    p.add_argument('--concurrency', type=int, nargs='+', default=[1, 4, 16])
    p.add_argument('--duration', type=float, default=10.0, help='seconds per concurrency level')
    p.add_argument('--max-batch', type=int, default=8)
    p.add_argument('--max-wait-ms', type=float, default=10.0)
    p.add_argument('--image-size', type=int, nargs=2, default=[480, 640], metavar=('H', 'W'))
    p.add_argument('--soak', type=float, default=0.0, help='seconds of extra load before the last memory reading')
    p.add_argument('--threads', type=int, default=None, help='torch threads of the server')
    p.add_argument('--device', default='cpu')
    p.add_argument('--modes', nargs='+', default=['on', 'off'], choices=['on', 'off'])
    return p.parse_args()


def start_server(args, max_batch: int) -> tuple:
    cmd = [sys.executable, osp.join(REPO, 'tools', 'serve.py'), args.config] + \
        ([args.checkpoint] if args.checkpoint else []) + \
        ['--port', '0', '--device', args.device, '--max-batch', str(max_batch), '--max-wait-ms',
         str(args.max_wait_ms), '--max-queue', '1024', '--timeout', '900', '--score-thr', '0.3']
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    deadline = time.monotonic() + 300
    url = None
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit('benchmark_serve: the server exited before listening')
        if 'listening on http://' in line:
            url = line.split('listening on ')[1].split()[0]
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    while time.monotonic() < deadline:
        try:
            if requests.get(url + '/ready', timeout=5).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit('benchmark_serve: the server did not get ready')


def memory_mb(url: str) -> float:
    for line in requests.get(url + '/metrics', timeout=10).text.splitlines():
        if line.startswith('rcnn_serve_resident_memory_bytes'):
            return float(line.split()[1]) / 2**20
    return float('nan')


def load(url: str, jpegs, clients: int, duration: float) -> tuple:
    """(images/s, latencies in s, non-200 answers) of ``clients`` threads posting for ``duration`` s."""
    latencies, failures, lock = [], [0], threading.Lock()
    stop_at = time.monotonic() + duration

    def client(k: int) -> None:
        with requests.Session() as session:
            i = k
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                r = session.post(url + '/predict', files={'image': ('a.jpg', jpegs[i % len(jpegs)], 'image/jpeg')},
                                 timeout=900)
                took = time.perf_counter() - start
                with lock:
                    if r.status_code == 200:
                        latencies.append(took)
                    else:
                        failures[0] += 1
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return len(latencies) / elapsed, np.array(latencies), failures[0]


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(0)
    h, w = args.image_size
    jpegs = []
    for _ in range(8):
        img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        for _ in range(5):
            s = int(rng.integers(h // 10, h // 3))
            x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            img[y:y + s, x:x + s] = rng.integers(120, 255, 3)
        jpegs.append(cv2.imencode('.jpg', img)[1].tobytes())
    print(f'rcnn-serve benchmark: {osp.basename(args.config)}, {h}x{w} JPEGs, {args.duration:g} s per level, '
          f'device {args.device}, {os.cpu_count()} CPUs visible')
    print(f'{"batching":<22} {"clients":>7} {"img/s":>8} {"p50 ms":>8} {"p99 ms":>8} {"errors":>6}')
    for mode in args.modes:
        max_batch = args.max_batch if mode == 'on' else 1
        proc, url = start_server(args, max_batch)
        try:
            load(url, jpegs, 2, 3.0)  # warm-up: first calls, allocator growth
            warm_mb = memory_mb(url)
            label = f'on (<= {max_batch}, {args.max_wait_ms:g} ms)' if mode == 'on' else 'off'
            for clients in args.concurrency:
                rate, lat, errors = load(url, jpegs, clients, args.duration)
                p50, p99 = (np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3) if len(lat) else (0, 0)
                print(f'{label:<22} {clients:>7} {rate:>8.2f} {p50:>8.0f} {p99:>8.0f} {errors:>6}', flush=True)
            loaded_mb = memory_mb(url)
            line = f'  server memory: {warm_mb:.0f} MiB after warm-up, {loaded_mb:.0f} MiB after the load'
            print(line, flush=True)
            done = 0.0
            while done < args.soak:  # memory once a minute: a leak grows, allocator warm-up levels off
                step = min(60.0, args.soak - done)
                load(url, jpegs, max(args.concurrency), step)
                done += step
                print(f'  server memory after {done:g} s more load: {memory_mb(url):.0f} MiB', flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == '__main__':
    main()

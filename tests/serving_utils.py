"""Helpers of the serving tests: a tiny randomly initialised detector (config + checkpoint), the
server as a subprocess on a free loopback port, raw HTTP over a socket, and headless Chromium
driven over the DevTools protocol on a pipe (no extra package). Every wait is bounded."""
import json
import os
import os.path as osp
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

import cv2
import numpy as np
import requests
import torch
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO_CONFIG = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
CLASSES = ('rectangle', 'ellipse', 'triangle', 'cross')


def scene(rng, h, w):
    """Dark noise with a few bright squares (something for the detector to look at)."""
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    for _ in range(3):
        s = int(rng.integers(12, min(h, w) // 2))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        img[y:y + s, x:x + s] = rng.integers(150, 255, 3)
    return img


def make_tiny_model(folder) -> tuple:
    """(config, checkpoint): the demo detector at a 128 px test scale, random weights with
    non-trivial BN statistics (so padding would show), class names in the checkpoint."""
    from rcnn_plugins.apis import DetInferencer
    config = osp.join(str(folder), 'tiny_demo.py')
    with open(config, 'w') as f:
        f.write(f'_base_ = [{DEMO_CONFIG!r}]\n'
                'test_pipeline = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(128, 128), '
                'keep_ratio=True), dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", '
                '"img_shape", "scale_factor"))]\n'
                'test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n')
    torch.manual_seed(0)
    model = DetInferencer(config, device='cpu', show_progress=False).model
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    checkpoint = osp.join(str(folder), 'tiny_demo.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': CLASSES}}}, checkpoint)
    return config, checkpoint


def write_images(folder, sizes, fmt='jpg', seed=0) -> List[str]:
    rng = np.random.default_rng(seed)
    paths = []
    os.makedirs(str(folder), exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        path = osp.join(str(folder), f'{i:03d}.{fmt}')
        assert cv2.imwrite(path, scene(rng, h, w))
        paths.append(path)
    return paths


class Server:
    """``tools/serve.py`` in a subprocess on 127.0.0.1, a free port (``--port 0``; the port is read
    from its first line). ``start`` waits (bounded) until ``/ready``."""

    def __init__(self, config: str, checkpoint: str, *flags: str) -> None:
        self.cmd = [sys.executable, osp.join(REPO, 'tools', 'serve.py'), config, checkpoint, '--host', '127.0.0.1',
                    '--port', '0', '--device', 'cpu', *flags]
        self.proc: Optional[subprocess.Popen] = None
        self.url = ''

    def start(self, timeout: float = 90.0) -> 'Server':
        env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + timeout
        # A thread reads its stderr (so a chatty server never blocks on a full pipe); the listening
        # line, printed once the model is built, gives the port.
        self.stderr_lines: List[str] = []
        threading.Thread(target=lambda: [self.stderr_lines.append(x) for x in self.proc.stderr],
                         daemon=True).start()
        while not self.url:
            found = [x for x in self.stderr_lines if 'listening on http://' in x]
            if found:
                self.url = found[0].split('listening on ')[1].split()[0]
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                time.sleep(0.2)
                raise RuntimeError('the server did not start:\n' + ''.join(self.stderr_lines[-40:]))
            else:
                time.sleep(0.05)
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + '/ready', timeout=5).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError('the server was not ready in time')

    @property
    def port(self) -> int:
        return int(self.url.rsplit(':', 1)[1])

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def metrics(self) -> dict:
        from rcnn_plugins.apis.serving.metrics import parse_metrics
        return parse_metrics(requests.get(self.url + '/metrics', timeout=10).text)


def raw_request(port: int, head: bytes, body: bytes = b'', read: bool = True, timeout: float = 20.0) -> bytes:
    """Send ``head`` (request line + headers, ending with a blank line) and ``body`` over a fresh
    socket; return everything the server answers until it closes (or b'' when not reading)."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as sock:
        sock.sendall(head)
        if body:
            sock.sendall(body)
        if not read:
            return b''
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
            data = b''.join(chunks)
            if b'\r\n\r\n' in data:  # stop once Content-Length bytes of body arrived
                header, rest = data.split(b'\r\n\r\n', 1)
                for line in header.split(b'\r\n'):
                    if line.lower().startswith(b'content-length:') and len(rest) >= int(line.split(b':')[1]):
                        return data
        return b''.join(chunks)


def parse_response(data: bytes) -> tuple:
    """(status, json body) of a raw HTTP response."""
    header, body = data.split(b'\r\n\r\n', 1)
    return int(header.split(b' ')[1]), json.loads(body)


def find_chromium() -> Optional[str]:
    import shutil
    for name in ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """Headless Chromium controlled with the DevTools protocol over ``--remote-debugging-pipe``
    (messages are JSON texts ended by a NUL byte on file descriptors 3 (to it) and 4 (from it))."""

    def __init__(self, binary: str, profile: str, width: int = 1100, height: int = 900) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:  # in the child: the pipes at the descriptors Chromium expects
            a, b = os.dup(to_child_r), os.dup(from_child_w)  # neither clobbered by the other's dup2
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
             '--remote-debugging-pipe', f'--user-data-dir={profile}', f'--window-size={width},{height}',
             '--no-first-run', '--no-default-browser-check', 'about:blank'],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b''
        self._id = 0
        self.session: Optional[str] = None

    def send(self, method: str, timeout: float = 20.0, **params) -> dict:
        self._id += 1
        msg = dict(id=self._id, method=method, params=params)
        if self.session and not method.startswith('Target.'):
            msg['sessionId'] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b'\0')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b'\0' in self._buf:
                raw, self._buf = self._buf.split(b'\0', 1)
                reply = json.loads(raw)
                if reply.get('id') == self._id:
                    if 'error' in reply:
                        raise RuntimeError(f'{method}: {reply["error"]}')
                    return reply['result']
            ready, _, _ = select.select([self._from_child], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError('Chromium closed the DevTools pipe')
                self._buf += chunk
        raise TimeoutError(f'{method}: no reply within {timeout} s')

    def open(self, url: str) -> None:
        target = self.send('Target.createTarget', url='about:blank')['targetId']
        self.session = self.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        self.send('Page.enable')
        self.send('Page.navigate', url=url)
        self.wait_for('document.readyState === "complete"')

    def evaluate(self, expression: str):
        result = self.send('Runtime.evaluate', expression=expression, returnByValue=True)
        if 'exceptionDetails' in result:
            raise RuntimeError(f'{expression}: {result["exceptionDetails"]}')
        return result['result'].get('value')

    def wait_for(self, expression: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f'{expression} still false after {timeout} s')

    def close(self) -> None:
        try:
            os.close(self._to_child)
            os.close(self._from_child)
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

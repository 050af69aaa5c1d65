"""The app's time and queue limits with a fake model (no torch model to build): uvicorn in a
thread on a free loopback port, real HTTP. Readiness before warm-up, 504 after ``--timeout``,
503 + Retry-After when the queue is full, and an unsupported backend refused by name."""
import socket
import threading
import time

import numpy as np
import pytest
import requests

from rcnn_plugins.apis.serving.limits import ServeLimits

uvicorn = pytest.importorskip('uvicorn')
from rcnn_plugins.apis.serving.app import create_app  # noqa: E402


class Sample:
    class pred_instances:  # noqa: N801 - stands in for a DetDataSample's field
        pass


class FakeModel:
    name, backend, classes = 'fake', 'pytorch', ('thing',)

    def __init__(self, limits):
        self.limits = limits
        self.warm = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.delay = 0.0
        self.calls = []

    def decode(self, data):
        return np.zeros((8, 8, 3), np.uint8)

    def pack(self, img):
        return dict(inputs=img)

    def shape_key(self, packed):
        return (8, 8)

    def warm_up(self):
        self.warm.wait(30)

    def forward(self, packed):
        self.calls.append(len(packed))
        self.gate.wait(30)
        time.sleep(self.delay)
        return [Sample() for _ in packed]

    def to_dict(self, sample, thr):
        return dict(labels=[], scores=[], bboxes=[], label_names=[], classes=list(self.classes))


@pytest.fixture
def served():
    limits = ServeLimits(request_timeout_s=0.5, max_queue=2)
    model = FakeModel(limits)
    app = create_app(model, limits, max_batch=1, max_wait_ms=0)
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level='error'))
    thread = threading.Thread(target=server.run, kwargs=dict(sockets=[sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield model, f'http://127.0.0.1:{sock.getsockname()[1]}'
    model.warm.set()
    model.gate.set()
    server.should_exit = True
    thread.join(20)


def post(url, **kw):
    return requests.post(url + '/predict', data=b'\xff\xd8', headers={'Content-Type': 'image/jpeg'}, timeout=20, **kw)


def test_not_ready_until_warm_then_timeout_and_queue_full(served):
    model, url = served
    assert requests.get(url + '/health', timeout=5).status_code == 200
    r = requests.get(url + '/ready', timeout=5)
    assert r.status_code == 503 and r.headers['retry-after'] == '1'
    r = post(url)
    assert r.status_code == 503 and r.json()['error'] == 'not_ready' and r.headers['retry-after'] == '1'
    model.warm.set()
    deadline = time.monotonic() + 10
    while requests.get(url + '/ready', timeout=5).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert post(url).status_code == 200
    # A forward pass slower than --timeout: 504 naming the limit.
    model.delay = 1.5
    start = time.monotonic()
    r = post(url)
    assert r.status_code == 504 and r.json()['error'] == 'timeout' and '0.5 s' in r.json()['detail']
    assert time.monotonic() - start < 1.4
    time.sleep(1.3)  # let that pass finish
    # The model held: one job runs, two wait (max_queue=2), the next is refused at once.
    model.delay = 0.0
    model.gate.clear()
    results = []
    threads = [threading.Thread(target=lambda: results.append(post(url))) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.15)
    r = post(url)
    assert r.status_code == 503 and r.json()['error'] == 'queue_full' and r.headers['retry-after'] == '1'
    model.gate.set()
    for t in threads:
        t.join(20)
    # Answered, or 504 for those held past the 0.5 s timeout; the batcher answers afterwards.
    assert len(results) == 3 and all(x.status_code in (200, 504) for x in results)
    assert post(url).status_code == 200
    metrics = requests.get(url + '/metrics', timeout=5).text
    assert 'rcnn_serve_errors_total{kind="queue_full"} 1' in metrics
    assert 'rcnn_serve_errors_total{kind="timeout"}' in metrics


def test_unsupported_backend_is_refused_by_name():
    import inspect

    from rcnn_plugins.apis import DetInferencer
    from rcnn_plugins.apis.serving.model import ServedModel
    if 'backend' in inspect.signature(DetInferencer.__init__).parameters:
        pytest.skip('DetInferencer takes backend=: the server passes it through')
    with pytest.raises(ValueError, match='--backend openvino'):
        ServedModel('no_config.py', None, backend='openvino')

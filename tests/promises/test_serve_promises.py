"""``rcnn-serve`` under load, hostile input, dropped clients and SIGTERM (a real server process on
127.0.0.1, real sockets, every loop bounded in time).

- 16 concurrent clients for a few seconds: no 5xx, every answer well-formed and equal to
  ``DetInferencer``'s for its image, forward passes of more than one image seen in ``/metrics``;
- hostile uploads each get a 4xx JSON error naming the problem, and the server answers right after;
- clients that vanish mid-upload or before their answer do not wedge the batcher;
- SIGTERM during load: requests in flight are answered, new ones refused, then the server exits.
"""
import concurrent.futures as cf
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import requests

from rcnn_plugins.apis import DetInferencer
from serving_utils import Server, make_tiny_model, parse_response, raw_request, write_images


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('serve_promises')
    config, checkpoint = make_tiny_model(root)
    # Two images of one padded shape (they may share a forward pass) and one of another.
    images = write_images(root / 'images', [(120, 160), (118, 158), (160, 100)], 'jpg')
    inferencer = DetInferencer(config, checkpoint, device='cpu', show_progress=False)
    reference = {path: inferencer(path)['predictions'][0] for path in images}
    return dict(config=config, checkpoint=checkpoint, images=images, reference=reference, root=root)


@pytest.fixture(scope='module')
def server(files):
    srv = Server(files['config'], files['checkpoint'], '--max-batch', '8', '--max-wait-ms', '20',
                 '--max-upload-mb', '8', '--max-pixels', '4000000', '--score-thr', '0').start()
    yield srv
    srv.stop()


def check_answer(out: dict, want: dict) -> None:
    assert out['labels'] == want['labels']
    np.testing.assert_allclose(out['scores'], want['scores'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.reshape(out['bboxes'], (-1, 4)), np.reshape(want['bboxes'], (-1, 4)),
                               rtol=0, atol=1e-2)


def assert_still_answers(server, files) -> None:
    path = files['images'][0]
    r = requests.post(server.url + '/predict', files={'image': open(path, 'rb')}, timeout=30)
    assert r.status_code == 200, r.text
    check_answer(r.json(), files['reference'][path])


def test_16_concurrent_clients(server, files):
    before = server.metrics()
    stop_at = time.monotonic() + 4.0
    datas = {p: open(p, 'rb').read() for p in files['images']}

    def client(k: int) -> list:
        seen = []
        with requests.Session() as session:
            i = k
            while time.monotonic() < stop_at:
                path = files['images'][i % len(files['images'])]
                r = session.post(server.url + '/predict', files={'image': ('a.jpg', datas[path], 'image/jpeg')},
                                 timeout=60)
                assert r.status_code < 500, r.text
                seen.append((path, r.status_code, r.json()))
                i += 1
        return seen

    with cf.ThreadPoolExecutor(16) as pool:
        answers = [a for f in [pool.submit(client, k) for k in range(16)] for a in f.result(timeout=120)]
    assert len(answers) >= 16
    for path, status, out in answers:
        assert status == 200, out
        check_answer(out, files['reference'][path])  # batching never changed a detection
    after = server.metrics()
    batches = after['rcnn_serve_batch_size_count'] - before['rcnn_serve_batch_size_count']
    single = after['rcnn_serve_batch_size_bucket{le="1.0"}'] - before['rcnn_serve_batch_size_bucket{le="1.0"}']
    assert batches - single > 0, 'no forward pass had more than one image'
    assert max(out['timing']['batch_size'] for _, _, out in answers) > 1
    assert after['rcnn_serve_requests_total{endpoint="/predict",status="200"}'] - \
        before.get('rcnn_serve_requests_total{endpoint="/predict",status="200"}', 0) == len(answers)
    assert after['rcnn_serve_queue_length'] == 0


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    chunk = b'IHDR' + ihdr
    return (b'\x89PNG\r\n\x1a\n' + struct.pack('>I', len(ihdr)) + chunk + struct.pack('>I', zlib.crc32(chunk))
            + b'\x00' * 64)


def test_hostile_inputs_get_4xx_json_and_the_server_keeps_answering(server, files):
    jpeg = open(files['images'][0], 'rb').read()
    url = server.url + '/predict'
    cases = [
        ('truncated JPEG', dict(files={'image': ('t.jpg', jpeg[:len(jpeg) // 2], 'image/jpeg')}), 400,
         'truncated_image', 'truncated JPEG'),
        ('truncated JPEG (90 %)', dict(files={'image': ('t.jpg', jpeg[:len(jpeg) * 9 // 10], 'image/jpeg')}), 400,
         'truncated_image', 'truncated JPEG'),
        ('text named .jpg', dict(files={'image': ('notes.jpg', b'just some text\n' * 10, 'image/jpeg')}), 400,
         'bad_image', 'not an image'),
        ('PNG claiming 40000x40000', dict(files={'image': ('huge.png', _png_claiming(40000, 40000), 'image/png')}),
         413, 'too_many_pixels', '40000x40000'),
        ('empty file', dict(files={'image': ('e.jpg', b'', 'image/jpeg')}), 400, 'empty_image', 'empty'),
        ('empty raw body', dict(data=b'', headers={'Content-Type': 'image/jpeg'}), 400, 'empty_body', 'empty'),
        ('wrong field name', dict(files={'file_upload': ('a.jpg', jpeg, 'image/jpeg')}), 400, 'missing_field',
         "'file_upload'"),
        ('text field instead of a file', dict(files={'image': (None, 'hello')}), 400, 'not_a_file', 'not a file'),
        ('wrong content type', dict(data=b'<xml/>', headers={'Content-Type': 'text/xml'}), 415,
         'unsupported_content_type', 'text/xml'),
        ('a PDF as the file', dict(files={'image': ('a.pdf', b'%PDF-1.4', 'application/pdf')}), 415,
         'unsupported_content_type', 'application/pdf'),
        ('JSON without the image', dict(json={'img': 'abc'}), 400, 'missing_field', "'img'"),
        ('JSON with bad base64', dict(json={'image': 'not base64!!'}), 400, 'bad_base64', 'base64'),
        ('broken JSON', dict(data=b'{"image": ', headers={'Content-Type': 'application/json'}), 400, 'bad_json',
         'JSON'),
    ]
    for name, kwargs, status, kind, text in cases:
        r = requests.post(url, timeout=30, **kwargs)
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        assert body['error'] == kind and text in body['detail'], (name, body)
    assert_still_answers(server, files)
    # 100 MB declared: refused from Content-Length before a byte of the body is read.
    head = (f'POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n'
            f'Content-Length: {100 * 2**20}\r\n\r\n').encode()
    status, body = parse_response(raw_request(server.port, head))
    assert status == 413 and body['error'] == 'upload_too_large' and '104857600 bytes' in body['detail']
    # 100 MB actually sent, chunked (no Content-Length): cut off once past the limit.
    refused = server.metrics()['rcnn_serve_errors_total{kind="upload_too_large"}']

    def chunks():
        block = b'\xff' * 2**20
        for _ in range(100):
            yield block

    try:
        r = requests.post(url, data=chunks(), headers={'Content-Type': 'image/jpeg'}, timeout=60)
        assert r.status_code == 413 and r.json()['error'] == 'upload_too_large'
    except requests.ConnectionError:  # the server may close before the client finished sending
        pass
    assert server.metrics()['rcnn_serve_errors_total{kind="upload_too_large"}'] == refused + 1
    values = server.metrics()
    for kind in ('truncated_image', 'bad_image', 'too_many_pixels', 'empty_image', 'missing_field',
                 'upload_too_large', 'unsupported_content_type'):
        assert values[f'rcnn_serve_errors_total{{kind="{kind}"}}'] >= 1, kind
    assert_still_answers(server, files)


def test_clients_disconnecting_mid_upload_do_not_wedge_the_batcher(server, files):
    jpeg = open(files['images'][0], 'rb').read()
    boundary = 'xyz'
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            f'Content-Type: image/jpeg\r\n\r\n').encode() + jpeg + f'\r\n--{boundary}--\r\n'.encode()
    head = (f'POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}'
            f'\r\nContent-Length: {len(body)}\r\n\r\n').encode()

    def vanish(k: int) -> None:
        # Half stop mid-body; half send everything and leave before the answer.
        part = body[:len(body) // 2] if k % 2 else body
        raw_request(server.port, head, part, read=False)

    threads = [threading.Thread(target=vanish, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    start = time.monotonic()
    assert_still_answers(server, files)
    assert time.monotonic() - start < 20
    deadline = time.monotonic() + 20
    while server.metrics()['rcnn_serve_queue_length'] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.metrics()['rcnn_serve_queue_length'] == 0


def test_sigterm_during_load_answers_in_flight_requests_then_exits(server, files):
    """Last in this module: it stops the module's server."""
    path = files['images'][0]
    jpeg = open(path, 'rb').read()
    head = (f'POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n'
            f'Content-Length: {len(jpeg)}\r\n\r\n').encode()
    # Requests surely in flight: their bodies are half sent when SIGTERM arrives.
    socks = [socket.create_connection(('127.0.0.1', server.port), timeout=30) for _ in range(4)]
    for sock in socks:
        sock.sendall(head + jpeg[:len(jpeg) // 2])
    stop_at = time.monotonic() + 6.0
    statuses = []

    def load() -> None:  # more clients keep coming during the shutdown
        while time.monotonic() < stop_at:
            try:
                r = requests.post(server.url + '/predict', files={'image': ('a.jpg', jpeg, 'image/jpeg')},
                                  timeout=30)
            except requests.ConnectionError:  # refused once the server stopped listening
                statuses.append('refused')
                time.sleep(0.05)
                continue
            statuses.append(r.status_code)
            if r.status_code == 200:
                check_answer(r.json(), files['reference'][path])
            else:
                assert r.status_code == 503 and r.json()['error'] == 'shutting_down', r.text

    loaders = [threading.Thread(target=load) for _ in range(6)]
    for t in loaders:
        t.start()
    time.sleep(1.0)
    server.proc.send_signal(15)
    time.sleep(0.5)
    for sock in socks:  # the rest of the in-flight bodies, after SIGTERM
        sock.sendall(jpeg[len(jpeg) // 2:])
    answers = []
    for sock in socks:
        data = b''
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        answers.append(parse_response(data))
    for t in loaders:
        t.join(60)
    for status, body in answers:
        assert status == 200, body
        check_answer(body, files['reference'][path])
    assert server.proc.wait(30) in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert any('stopped (in-flight requests answered)' in line for line in server.stderr_lines)
    assert 200 in statuses and 'refused' in statuses
    with pytest.raises(requests.ConnectionError):  # new connections are refused
        requests.get(server.url + '/health', timeout=5)

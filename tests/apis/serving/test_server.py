"""``rcnn-serve`` end to end: the server in a subprocess on a free loopback port with a tiny
randomly initialised detector; ``/predict`` (form, JSON base64, raw bytes, ``?draw=1``) against
``DetInferencer`` on the same files, the health / readiness / metrics endpoints, and the web
page driven in headless Chromium (upload, boxes in the DOM, slider, screenshot)."""
import base64
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import requests

from rcnn_plugins.apis import DetInferencer
from serving_utils import CLASSES, Chromium, Server, find_chromium, make_tiny_model, write_images


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('serve')
    config, checkpoint = make_tiny_model(root)
    images = write_images(root / 'images', [(120, 160), (100, 100), (150, 90)], 'jpg')
    images += write_images(root / 'png', [(96, 128)], 'png', seed=5)
    return dict(config=config, checkpoint=checkpoint, images=images, root=root)


@pytest.fixture(scope='module')
def reference(files):
    """DetInferencer's predictions of every test image, one image per call."""
    inferencer = DetInferencer(files['config'], files['checkpoint'], device='cpu', show_progress=False)
    return {path: inferencer(path)['predictions'][0] for path in files['images']}


@pytest.fixture(scope='module')
def server(files):
    srv = Server(files['config'], files['checkpoint'], '--score-thr', '0.1', '--max-batch', '4').start()
    yield srv
    assert srv.stop() in (0, -15), ''.join(srv.stderr_lines[-30:])  # uvicorn re-raises SIGTERM when done


def assert_same(got: dict, want: dict, thr: float = 0.0):
    keep = [i for i, s in enumerate(want['scores']) if s >= thr]
    assert got['labels'] == [want['labels'][i] for i in keep]
    np.testing.assert_allclose(got['scores'], [want['scores'][i] for i in keep], rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.reshape(got['bboxes'], (-1, 4)),
                               np.reshape([want['bboxes'][i] for i in keep], (-1, 4)), rtol=0, atol=1e-3)
    assert got['label_names'] == [CLASSES[label] for label in got['labels']]


def test_predict_equals_det_inferencer(server, files, reference):
    for path in files['images']:
        h, w = cv2.imread(path).shape[:2]
        with open(path, 'rb') as f:
            data = f.read()
        mime = 'image/png' if path.endswith('.png') else 'image/jpeg'
        form = requests.post(server.url + '/predict?score_thr=0', files={'image': ('x', data, mime)}, timeout=30)
        assert form.status_code == 200, form.text
        out = form.json()
        assert len(reference[path]['scores']) > 0  # the comparison compares something
        assert_same(out, reference[path])
        assert out['image'] == dict(width=w, height=h) and out['classes'] == list(CLASSES)
        assert out['model'] == 'tiny_demo' and out['timing']['batch_size'] >= 1
        assert out['timing']['total_ms'] >= out['timing']['inference_ms'] > 0
        # The same image as JSON base64 and as raw bytes; the server's default threshold (0.1) applies.
        js = requests.post(server.url + '/predict', json={'image': base64.b64encode(data).decode()}, timeout=30)
        raw = requests.post(server.url + '/predict', data=data, headers={'Content-Type': mime}, timeout=30)
        for response in (js, raw):
            assert response.status_code == 200, response.text
            assert_same(response.json(), reference[path], thr=0.1)
            assert response.json()['score_thr'] == 0.1
    # Original-image pixels: boxes lie inside the image, not the 128 px resized one.
    big = files['images'][0]
    boxes = np.array(requests.post(server.url + '/predict?score_thr=0', files={'image': open(big, 'rb')},
                                   timeout=30).json()['bboxes'])
    assert boxes[:, 2].max() > 128 and boxes[:, 2].max() <= 160


def test_draw_returns_the_drawn_image(server, files):
    path = files['images'][0]
    r = requests.post(server.url + '/predict?draw=1&score_thr=0.1', files={'image': open(path, 'rb')}, timeout=30)
    assert r.status_code == 200 and r.headers['content-type'] == 'image/jpeg'
    drawn = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(path)
    assert drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original).max() > 100  # boxes were drawn on it


def test_health_ready_info_metrics(server):
    assert requests.get(server.url + '/health', timeout=10).json() == dict(status='ok')
    assert requests.get(server.url + '/ready', timeout=10).json()['status'] == 'ready'
    info = requests.get(server.url + '/info', timeout=10).json()
    assert info['classes'] == list(CLASSES) and info['max_batch'] == 4 and info['score_thr'] == 0.1
    r = requests.get(server.url + '/metrics', timeout=10)
    assert r.headers['content-type'].startswith('text/plain')
    text = r.text
    for name, kind in [('rcnn_serve_requests_total', 'counter'), ('rcnn_serve_errors_total', 'counter'),
                       ('rcnn_serve_request_duration_seconds', 'histogram'), ('rcnn_serve_batch_size', 'histogram'),
                       ('rcnn_serve_queue_length', 'gauge')]:
        assert f'# TYPE {name} {kind}' in text
    values = server.metrics()
    assert values['rcnn_serve_queue_length'] == 0
    assert values['rcnn_serve_request_duration_seconds_bucket{le="+Inf"}'] == \
        values['rcnn_serve_request_duration_seconds_count']
    # Cumulative buckets never decrease.
    buckets = [v for k, v in values.items() if k.startswith('rcnn_serve_batch_size_bucket')]
    assert buckets == sorted(buckets)
    assert values['rcnn_serve_resident_memory_bytes'] > 10 * 2**20


def test_web_page_in_headless_chromium(server, files, tmp_path):
    binary = find_chromium()
    if binary is None:
        pytest.skip('no Chromium on this machine (Debian: apt-get install chromium); CI installs it')
    page = requests.get(server.url + '/', timeout=10)
    assert page.status_code == 200 and 'type="file"' in page.text
    path = files['images'][0]
    browser = Chromium(binary, str(tmp_path / 'profile'))
    try:
        browser.open(server.url + '/')
        browser.wait_for('document.getElementById("model").textContent.includes("tiny_demo")')
        root = browser.send('DOM.getDocument')['root']['nodeId']
        node = browser.send('DOM.querySelector', nodeId=root, selector='#file')['nodeId']
        browser.send('DOM.setFileInputFiles', nodeId=node, files=[path])
        browser.wait_for('document.querySelectorAll("#stage .box").length > 0')
        boxes = browser.evaluate('Array.from(document.querySelectorAll("#stage .box")).map('
                                 'b => [b.dataset.label, Number(b.dataset.score), b.textContent])')
        # The page shows the detections at or above the server's default threshold (0.1).
        want = requests.post(server.url + '/predict?score_thr=0.1', files={'image': open(path, 'rb')},
                             timeout=30).json()
        assert sorted(b[0] for b in boxes) == sorted(want['label_names'])
        np.testing.assert_allclose(sorted(b[1] for b in boxes), sorted(want['scores']), atol=1e-6)
        assert all(b[2] == f'{b[0]} {b[1]:.2f}' for b in boxes)  # class name and score on each box
        shot = tmp_path / 'web_page.png'
        shot.write_bytes(base64.b64decode(browser.send('Page.captureScreenshot', format='png')['data']))
        # The slider filters in the page: at the median score about half the boxes stay.
        every = requests.post(server.url + '/predict?score_thr=0', files={'image': open(path, 'rb')},
                              timeout=30).json()['scores']
        thr = round(float(np.median(every)), 2)
        browser.evaluate(f'(() => {{ const s = document.getElementById("thr"); s.value = {thr}; '
                         's.dispatchEvent(new Event("input")); })()')
        assert browser.evaluate('document.querySelectorAll("#stage .box").length') == sum(s >= thr for s in every)
        assert 0 < sum(s >= thr for s in every) < len(every)
    finally:
        browser.close()
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 300 and img.std() > 10
    out_dir = os.environ.get('RCNN_SERVE_SCREENSHOT_DIR')  # keep it for a person to look at
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        shutil.copy(shot, osp.join(out_dir, 'web_page.png'))

"""Upload checks made before decoding: header sizes of PNG, JPEG, BMP and WebP against real encoders'
files, the pixel limit, truncation, and the metrics page format."""
import struct

import cv2
import numpy as np
import pytest

from rcnn_plugins.apis.serving.errors import RequestError
from rcnn_plugins.apis.serving.limits import ServeLimits, check_complete, image_header_size
from rcnn_plugins.apis.serving.metrics import Metrics, parse_metrics


@pytest.mark.parametrize('ext', ['.png', '.jpg', '.bmp', '.webp'])
@pytest.mark.parametrize('hw', [(37, 61), (64, 16)])
def test_header_size_matches_the_encoded_image(ext, hw):
    img = np.random.default_rng(0).integers(0, 255, (*hw, 3), dtype=np.uint8)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == '.webp' else []  # 101: lossless (VP8L)
    data = cv2.imencode(ext, img, params)[1].tobytes()
    assert image_header_size(data) == (hw[1], hw[0])
    if ext == '.webp':  # lossy VP8 too
        assert image_header_size(cv2.imencode(ext, img, [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes()) == (hw[1], hw[0])


def test_pixel_limit_and_truncation():
    limits = ServeLimits(max_pixels=100 * 100)
    ok = cv2.imencode('.png', np.zeros((100, 100, 3), np.uint8))[1].tobytes()
    limits.check_pixels(ok)
    big = cv2.imencode('.png', np.zeros((100, 101, 3), np.uint8))[1].tobytes()
    with pytest.raises(RequestError, match='101x100 pixels') as err:
        limits.check_pixels(big)
    assert err.value.status == 413 and err.value.kind == 'too_many_pixels'
    # A BMP header claiming 50000 x -50000 (top-down) is refused too.
    bmp = bytearray(cv2.imencode('.bmp', np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    bmp[18:26] = struct.pack('<ii', 50000, -50000)
    with pytest.raises(RequestError, match='50000x50000'):
        limits.check_pixels(bytes(bmp))
    jpeg = cv2.imencode('.jpg', np.zeros((50, 50, 3), np.uint8))[1].tobytes()
    check_complete(jpeg)
    check_complete(ok)
    for cut in (jpeg[:-2], jpeg[:len(jpeg) // 2]):
        with pytest.raises(RequestError, match='truncated JPEG'):
            check_complete(cut)
    with pytest.raises(RequestError, match='truncated PNG'):
        check_complete(ok[:-20])
    with pytest.raises(RequestError, match='Content-Length'):
        limits.check_declared_length('12x')
    with pytest.raises(RequestError, match='more than this server accepts') as err:
        ServeLimits(max_upload_bytes=10).check_declared_length('11')
    assert err.value.status == 413


def test_metrics_text_format():
    m = Metrics(queue_length=lambda: 3)
    m.request('/predict', 200, 0.03)
    m.request('/predict', 413, 0.001, error='upload_too_large')
    for size in (1, 4, 4, 9):
        m.batch(size)
    values = parse_metrics(m.render())
    assert values['rcnn_serve_requests_total{endpoint="/predict",status="200"}'] == 1
    assert values['rcnn_serve_errors_total{kind="upload_too_large"}'] == 1
    assert values['rcnn_serve_request_duration_seconds_bucket{le="0.005"}'] == 1  # 0.001
    assert values['rcnn_serve_request_duration_seconds_bucket{le="0.05"}'] == 2   # + 0.03
    assert values['rcnn_serve_request_duration_seconds_sum'] == pytest.approx(0.031)
    assert values['rcnn_serve_batch_size_bucket{le="1.0"}'] == 1
    assert values['rcnn_serve_batch_size_bucket{le="4.0"}'] == 3
    assert values['rcnn_serve_batch_size_bucket{le="8.0"}'] == 3
    assert values['rcnn_serve_batch_size_bucket{le="12.0"}'] == 4
    assert values['rcnn_serve_batch_size_bucket{le="+Inf"}'] == values['rcnn_serve_batch_size_count'] == 4
    assert values['rcnn_serve_batch_size_sum'] == 18
    assert values['rcnn_serve_queue_length'] == 3

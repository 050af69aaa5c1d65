"""PhotoMetricDistortion with fixed draws: brightness, contrast and the channel swap by hand
(the HSV round trip with no saturation/hue change is the identity up to float error)."""
import numpy as np

from rcnn_plugins.datasets.transforms import PhotoMetricDistortion


def run(flags, img):
    t = PhotoMetricDistortion()
    t._random_flags = lambda: flags
    boxes = np.array([[1, 1, 3, 3]], np.float32)
    out = t(dict(img=img.copy(), gt_bboxes=boxes.copy()))
    np.testing.assert_array_equal(out['gt_bboxes'], boxes)  # boxes untouched
    assert out['img'].dtype == np.float32
    return out['img']


def test_brightness_contrast_swap():
    img = np.random.RandomState(0).randint(20, 200, (4, 5, 3)).astype(np.uint8)
    order = np.array([2, 0, 1])
    # mode 0 (contrast last), brightness +10, contrast x1.5, no saturation / hue, swap.
    got = run((0, 1, 1, 0, 0, 1, 10.0, 1.5, 1.0, 0.0, order), img)
    np.testing.assert_allclose(got, ((img.astype(np.float32) + 10) * 1.5)[..., order], rtol=1e-4, atol=1e-2)
    # mode 1 (contrast first): (img + 10) * 0.5, no swap.
    got = run((1, 1, 1, 0, 0, 0, 10.0, 0.5, 1.0, 0.0, order), img)
    np.testing.assert_allclose(got, (img.astype(np.float32) + 10) * 0.5, rtol=1e-4, atol=1e-2)


def test_saturation_zero_gives_grey():
    img = np.random.RandomState(1).randint(0, 255, (3, 3, 3)).astype(np.uint8)
    got = run((0, 0, 0, 1, 0, 0, 0.0, 1.0, 0.0, 0.0, np.arange(3)), img)
    # S = 0: every channel equals V = max(B, G, R).
    np.testing.assert_allclose(got, np.repeat(img.max(-1, keepdims=True), 3, -1).astype(np.float32), atol=1e-3)

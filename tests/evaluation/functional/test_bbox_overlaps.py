"""Numpy bbox_overlaps with MMDetection's signature: against torchvision's box_iou, and the
legacy (+1) convention by hand."""
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from rcnn_plugins.evaluation.functional import bbox_overlaps


def test_iou_against_torchvision_and_iof():
    rng = np.random.default_rng(0)
    xy = rng.random((7, 2)) * 50
    b1 = np.concatenate([xy, xy + rng.random((7, 2)) * 30 + 1], 1)
    xy = rng.random((5, 2)) * 50
    b2 = np.concatenate([xy, xy + rng.random((5, 2)) * 30 + 1], 1)
    out = bbox_overlaps(b1, b2)
    assert out.dtype == np.float32 and out.shape == (7, 5)
    np.testing.assert_allclose(out, box_iou(torch.from_numpy(b1), torch.from_numpy(b2)).numpy(), rtol=1e-5, atol=1e-6)
    # Swapping the arguments transposes the IoU (MMDetection swaps internally for speed).
    np.testing.assert_allclose(bbox_overlaps(b2, b1), out.T, rtol=1e-6)
    # IoF: intersection over the first box's area. [0,0,10,10] vs [5,0,20,10]: 50 / 100.
    assert bbox_overlaps(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 20, 10]]), mode='iof')[0, 0] == pytest.approx(0.5)
    assert bbox_overlaps(np.zeros((0, 4)), b2).shape == (0, 5)
    with pytest.raises(AssertionError):
        bbox_overlaps(b1, b2, mode='giou')


def test_legacy_coordinate_hand_values():
    a, b = np.array([[0, 0, 10, 10]]), np.array([[5, 5, 15, 15]])
    # +1 sides: areas 11 * 11 = 121, overlap 6 * 6 = 36 -> 36 / 206; without: 25 / 175.
    assert bbox_overlaps(a, b, use_legacy_coordinate=True)[0, 0] == pytest.approx(36 / 206)
    assert bbox_overlaps(a, b)[0, 0] == pytest.approx(25 / 175)
    # Touching boxes overlap by one pixel column in the legacy convention.
    assert bbox_overlaps(a, np.array([[10, 0, 20, 10]]), 'iou', 1e-6, True)[0, 0] == pytest.approx(11 / 231)

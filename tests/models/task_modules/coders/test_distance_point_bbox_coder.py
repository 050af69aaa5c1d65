"""DistancePointBBoxCoder: point + (l, t, r, b) <-> boxes, by hand."""
import pytest
import torch

from rcnn_plugins.registry import TASK_UTILS


def test_encode_decode_by_hand():
    coder = TASK_UTILS.build(dict(type='DistancePointBBoxCoder'))
    points = torch.tensor([[10., 20.], [5., 5.]])
    boxes = torch.tensor([[4., 10., 30., 26.], [0., 1., 8., 6.]])
    dist = coder.encode(points, boxes)
    assert dist.tolist() == [[6., 10., 20., 6.], [5., 4., 3., 1.]]
    assert torch.equal(coder.decode(points, dist), boxes)
    # max_dis clamps to max_dis - eps; decode clips x to w and y to h.
    assert coder.encode(points, boxes, max_dis=8.)[0].tolist() == pytest.approx([6., 7.9, 7.9, 6.])
    assert coder.decode(points, dist, max_shape=(22, 25))[0].tolist() == [4., 10., 25., 22.]
    with pytest.raises(ValueError, match=r'\(N, 2\) points'):
        coder.decode(boxes, dist)

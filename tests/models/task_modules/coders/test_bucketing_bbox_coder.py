"""BucketingBBoxCoder (SABL): a hand case worked out from the paper's bucket definition, the
encode/decode round trip, and the localisation confidence."""
import math

import pytest
import torch

from rcnn_plugins.models.task_modules.coders import BucketingBBoxCoder
from rcnn_plugins.registry import TASK_UTILS


def test_hand_case():
    # Proposal [0, 0, 10, 10], 4 buckets, no rescale: side_num 2, bucket size 2.5.
    # Bucket centres: left 1.25, 3.75 (from x1 inwards); right 8.75, 6.25; top 1.25, 3.75; bottom 8.75, 6.25.
    # gt [2, 4, 9, 6]: offsets (centre - side) / 2.5:
    #   left  (1.25-2, 3.75-2)/2.5 = (-0.3, 0.7)   nearest 0, 2nd 0.7 < 1 -> offset weights (1, 1)
    #   right (8.75-9, 6.25-9)/2.5 = (-0.1, -1.1)  nearest 0, 2nd 1.1 >= 1 -> (1, 0)
    #   top   (1.25-4, 3.75-4)/2.5 = (-1.1, -0.1)  nearest 1 -> (0, 1)
    #   bottom(8.75-6, 6.25-6)/2.5 = (1.1, 0.1)    nearest 1 -> (0, 1)
    # cls weights: a non-label bucket within one bucket of the side is ignored (left bucket 1 only).
    coder = BucketingBBoxCoder(num_buckets=4, scale_factor=1.0)
    offsets, offset_w, labels, cls_w = coder.encode(torch.tensor([[0., 0., 10., 10.]]),
                                                    torch.tensor([[2., 4., 9., 6.]]))
    torch.testing.assert_close(offsets, torch.tensor([[-0.3, 0.7, -0.1, -1.1, -1.1, -0.1, 1.1, 0.1]]))
    assert offset_w.tolist() == [[1, 1, 1, 0, 0, 1, 0, 1]]
    assert labels.tolist() == [[1, 0, 1, 0, 0, 1, 0, 1]]
    assert cls_w.tolist() == [[1, 0, 1, 1, 1, 1, 1, 1]]
    _, _, _, no_ignore = BucketingBBoxCoder(4, 1.0, cls_ignore_neighbor=False).encode(
        torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[2., 4., 9., 6.]]))
    assert (no_ignore == 1).all()

    # scale_factor 2 doubles the proposal about its centre ([-5, -5, 15, 15]): bucket size 5, left
    # centres -2.5 and 2.5 -> gt x1 = 2 is 0.1 bucket left of bucket 1.
    offsets, _, labels, _ = BucketingBBoxCoder(4, 2.0).encode(torch.tensor([[0., 0., 10., 10.]]),
                                                            torch.tensor([[2., 4., 9., 6.]]))
    torch.testing.assert_close(offsets[0, :2], torch.tensor([-0.9, 0.1]))
    assert labels[0, :2].tolist() == [0, 1]


def test_round_trip_and_clip():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    props = torch.cat([xy, xy + torch.rand(50, 2, generator=g) * 50 + 10], 1)
    gts = props + (torch.rand(50, 4, generator=g) - 0.5) * 8
    for num_buckets, scale in ((14, 1.7), (4, 1.0), (7, 3.0)):
        coder = TASK_UTILS.build(dict(type='BucketingBBoxCoder', num_buckets=num_buckets, scale_factor=scale))
        offsets, _, labels, _ = coder.encode(props, gts)
        assert offsets.shape == (50, 4 * math.ceil(num_buckets / 2))
        boxes, conf = coder.decode(props, (labels * 20, offsets))
        torch.testing.assert_close(boxes, gts, atol=1e-3, rtol=1e-4)
        assert ((conf > 0.99) & (conf <= 1 + 1e-6)).all()
    clipped, _ = coder.decode(props, (labels * 20, offsets), max_shape=(50, 60))
    assert clipped[:, 0::2].max() <= 59 and clipped[:, 1::2].max() <= 49 and clipped.min() >= 0


def test_loc_confidence_neighbours():
    coder = BucketingBBoxCoder(num_buckets=6, scale_factor=1.0)  # 3 buckets per side
    # Bucket probabilities (3, 1, 2)/6 on every side: top-2 are buckets 0 and 2, not neighbours -> 0.5.
    far = torch.log(torch.tensor([3., 1., 2.])).repeat(4)[None]
    _, conf = coder.decode(torch.tensor([[0., 0., 12., 12.]]), (far, torch.zeros(1, 12)))
    assert conf.item() == pytest.approx(0.5)
    # (3, 2, 1)/6: buckets 0 and 1 are neighbours -> 0.5 + 1/3.
    near = torch.log(torch.tensor([3., 2., 1.])).repeat(4)[None]
    boxes, conf = coder.decode(torch.tensor([[0., 0., 12., 12.]]), (near, torch.zeros(1, 12)))
    assert conf.item() == pytest.approx(0.5 + 1 / 3)
    # Zero offsets put each side on its best bucket's centre: 2 px buckets, bucket 0 -> 1 px inwards.
    assert boxes.tolist() == [[1., 1., 11., 11.]]

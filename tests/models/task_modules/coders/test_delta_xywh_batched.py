"""DeltaXYWHBBoxCoder.decode with batched (B, N, 4) boxes and per-image max_shape, as MMDetection's
own coder test runs it (a (2, 4, 1, 4) case internally); a wrong number of shapes is an
AssertionError there and an error that is both that and a ValueError here."""
import pytest
import torch

from rcnn_plugins.models.task_modules.coders import DeltaXYWHBBoxCoder

ROIS = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.], [0., 0., 1., 1.], [5., 5., 5., 5.]])
DELTAS = torch.tensor([[0., 0., 0., 0.], [1., 1., 1., 1.], [0., 0., 2., -1.], [0.7, -1.9, -0.5, 0.3]])


def test_batched_decode_per_image_shapes():
    coder = DeltaXYWHBBoxCoder()
    single = coder.decode(ROIS, DELTAS, max_shape=(32, 32))
    # Row 2 by hand (no +1): centre 0.5 + 1 = 1.5, size e -> [1.5 - e/2, 1.5 + e/2].
    e = torch.e if hasattr(torch, 'e') else 2.718281828
    torch.testing.assert_close(single[1], torch.tensor([1.5 - e / 2, 1.5 - e / 2, 1.5 + e / 2, 1.5 + e / 2]))
    b_rois, b_deltas = ROIS[None].repeat(2, 1, 1), DELTAS[None].repeat(2, 1, 1)
    for shapes in ((32, 32), [(32, 32), (32, 32)], torch.tensor([[32, 32], [32, 32]])):
        torch.testing.assert_close(coder.decode(b_rois, b_deltas, max_shape=shapes)[0], single)
    # Different shapes per image clip each image to its own.
    out = coder.decode(b_rois, b_deltas, max_shape=[(32, 32), (2, 3)])
    torch.testing.assert_close(out[0], single)
    assert out[1][:, 0::2].max() <= 3 and out[1][:, 1::2].max() <= 2
    with pytest.raises(AssertionError):
        coder.decode(b_rois, b_deltas, max_shape=[(32, 32), (32, 32), (32, 32)])
    with pytest.raises(ValueError):
        coder.decode(b_rois, b_deltas, max_shape=[(32, 32), (32, 32), (32, 32)])

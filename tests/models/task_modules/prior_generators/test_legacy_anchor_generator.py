"""LegacyAnchorGenerator: MMDetection 1.x's "-1" base anchors, by hand."""
import torch

from rcnn_plugins.models.task_modules.prior_generators import AnchorGenerator, LegacyAnchorGenerator
from rcnn_plugins.registry import TASK_UTILS


def test_hand_anchors():
    # Base size 9, scale 1, centre 0.5 * (9 - 1) = 4: corners 4 -+ (9 - 1) / 2 -> [0, 0, 8, 8]; stride 16 shifts.
    gen = LegacyAnchorGenerator(strides=[16], ratios=[1.], scales=[1.], base_sizes=[9], center_offset=0.5)
    anchors = gen.grid_priors([(2, 2)])[0]
    assert anchors.tolist() == [[0., 0., 8., 8.], [16., 0., 24., 8.], [0., 16., 8., 24.], [16., 16., 24., 24.]]
    # The new convention has the corners at 4.5 -+ 4.5.
    new = AnchorGenerator(strides=[16], ratios=[1.], scales=[1.], base_sizes=[9], center_offset=0.5)
    assert new.grid_priors([(1, 1)])[0].tolist() == [[0., 0., 9., 9.]]
    # Ratio 0.5 (h / w), scale 8, base 4: w = 4 * 8 / sqrt(.5) = 45.25, h = 22.63; centre 1.5.
    gen = TASK_UTILS.build(dict(type='LegacyAnchorGenerator', center_offset=0.5, scales=[8], ratios=[0.5],
                                strides=[4]))
    w, h = 32 / 0.5 ** 0.5, 32 * 0.5 ** 0.5
    torch.testing.assert_close(gen.base_anchors[0], torch.tensor(
        [[1.5 - (w - 1) / 2, 1.5 - (h - 1) / 2, 1.5 + (w - 1) / 2, 1.5 + (h - 1) / 2]]))

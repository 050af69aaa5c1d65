"""FPN's level arguments accept exactly what MMDetection 3.3's FPN accepts.

MMDetection's rule (mmdet/models/necks/fpn.py, written out here): with ``end_level`` -1 or the last
input, ``num_outs >= num_ins - start_level`` (levels beyond are extra levels on top of the last
input); with an earlier ``end_level``, ``end_level < num_ins`` and ``num_outs == end_level -
start_level + 1`` (no extra levels on top of a truncated pyramid, in MMDetection too).
"""
import itertools

import pytest
import torch

from rcnn_plugins.models.necks import FPN, PAFPN

IN = [4, 8, 16, 32]


def mmdet_accepts(start, end, num_outs, num_ins=len(IN)):
    if end in (-1, num_ins - 1):
        return num_outs >= num_ins - start
    return end < num_ins and num_outs == end - start + 1


@pytest.mark.parametrize('neck', [FPN, PAFPN])
def test_same_accepted_arguments_as_mmdetection(neck):
    # Valid level indices (MMDetection has no check for negative or out-of-range start levels; it
    # then builds laterals from wrapped-around inputs, which we refuse).
    for start, end, num_outs in itertools.product(range(4), [-1, 0, 1, 2, 3], range(1, 8)):
        if end != -1 and end < start:
            continue
        try:
            neck(IN, 4, num_outs, start_level=start, end_level=end)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == mmdet_accepts(start, end, num_outs), (start, end, num_outs)


def test_extra_levels_on_top_of_the_last_input():
    # end_level given as the last index works like -1: two used levels + three extra ones.
    fpn = FPN(IN, 4, num_outs=5, start_level=2, end_level=3, add_extra_convs='on_input')
    xs = [torch.randn(1, c, 32 // 2 ** i, 32 // 2 ** i) for i, c in enumerate(IN)]
    outs = fpn(xs)
    assert [o.shape[-1] for o in outs] == [8, 4, 2, 1, 1]
    assert fpn.fpn_convs[2].conv.in_channels == 32  # first extra conv on the last input
    with pytest.raises(ValueError, match='num_outs must be end_level - start_level \\+ 1'):
        FPN(IN, 4, num_outs=4, start_level=1, end_level=2)

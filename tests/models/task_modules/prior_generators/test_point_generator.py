"""MlvlPointGenerator: points, strides, valid flags and sparse points, by hand."""
import torch

from rcnn_plugins.registry import TASK_UTILS


def test_points_by_hand():
    gen = TASK_UTILS.build(dict(type='MlvlPointGenerator', strides=[8, (16, 4)]))
    assert gen.num_levels == 2 and gen.num_base_priors == [1, 1]
    lvl0, lvl1 = gen.grid_priors([(2, 3), (1, 2)])
    # Cell centres, row-major: (x + 0.5) * 8, (y + 0.5) * 8.
    assert lvl0.tolist() == [[4., 4.], [12., 4.], [20., 4.], [4., 12.], [12., 12.], [20., 12.]]
    # (w, h) strides (16, 4): x = (i + .5) * 16, y = (j + .5) * 4.
    assert lvl1.tolist() == [[8., 2.], [24., 2.]]
    with_stride = gen.grid_priors([(2, 3), (1, 2)], with_stride=True)[1]
    assert with_stride.tolist() == [[8., 2., 16., 4.], [24., 2., 16., 4.]]
    corner = TASK_UTILS.build(dict(type='MlvlPointGenerator', strides=[8], offset=0.))
    assert corner.grid_priors([(1, 2)])[0].tolist() == [[0., 0.], [8., 0.]]


def test_valid_flags_and_sparse_points():
    gen = TASK_UTILS.build(dict(type='MlvlPointGenerator', strides=[8]))
    # A 10 x 17 image fills ceil(10 / 8) = 2 rows and ceil(17 / 8) = 3 columns: every cell.
    assert gen.valid_flags([(2, 3)], (10, 17))[0].tolist() == [True] * 6
    # An 8 x 9 image in a 16 x 24 batch: 1 row, 2 columns are real pixels.
    assert gen.valid_flags([(2, 3)], (8, 9))[0].tolist() == [True, True, False, False, False, False]
    grid = gen.grid_priors([(2, 3)])[0]
    idx = torch.tensor([5, 0, 3])
    assert torch.equal(gen.sparse_priors(idx, (2, 3), 0), grid[idx])

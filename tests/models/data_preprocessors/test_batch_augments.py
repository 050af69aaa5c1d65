"""DetDataPreprocessor(batch_augments=[BatchFixedSizePad | BatchResize]): shapes, pad values,
boxes and metainfo by hand; applied in training only."""
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.data_preprocessors import BatchFixedSizePad, BatchResize, DetDataPreprocessor
from rcnn_plugins.structures import DetDataSample


def batch(sizes):
    samples = []
    for h, w in sizes:
        s = DetDataSample(metainfo=dict(img_shape=(h, w), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[1., 2., 5., 6.]]), labels=torch.tensor([0]))
        s.ignored_instances = InstanceData(bboxes=torch.tensor([[0., 0., 2., 2.]]))
        samples.append(s)
    inputs = [torch.full((3, h, w), 10, dtype=torch.uint8) for h, w in sizes]
    return dict(inputs=inputs, data_samples=samples)


def test_fixed_size_pad():
    pre = DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1], pad_size_divisor=4,
                              batch_augments=[dict(type='BatchFixedSizePad', size=(16, 20), img_pad_value=-1)])
    out = pre(batch([(6, 9), (10, 7)]), training=True)
    x = out['inputs']
    assert x.shape == (2, 3, 16, 20)
    assert (x[0, :, :6, :9] == 10).all() and (x[0, :, 6:12, :12] == 0).all()  # preprocessor pad (0) to 12x12
    assert (x[:, :, 12:, :] == -1).all() and (x[:, :, :, 12:] == -1).all()  # then the fixed-size pad
    for s in out['data_samples']:
        assert s.batch_input_shape == (16, 20) and s.pad_shape == (16, 20)
        assert s.gt_instances.bboxes.tolist() == [[1., 2., 5., 6.]]          # padding bottom/right: no move
    # Not in evaluation, and a batch already large enough is left alone.
    assert pre(batch([(6, 9)]), training=False)['inputs'].shape == (1, 3, 8, 12)
    big = BatchFixedSizePad(size=(4, 4))
    y = torch.zeros(1, 3, 8, 8)
    assert big(y, None)[0] is y
    with pytest.raises(NotImplementedError, match='masks'):
        BatchFixedSizePad(size=(4, 4), pad_mask=True)


def test_batch_resize():
    pre = DetDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1],
                              batch_augments=[dict(type='BatchResize', scale=(20, 30), pad_size_divisor=8)])
    out = pre(batch([(10, 12), (8, 15)]), training=True)
    # Batch (10, 15): s = 20 / 10 = 2, long side 30 <= 30 -> (20, 30), padded to (24, 32).
    assert out['inputs'].shape == (2, 3, 24, 32)
    assert (out['inputs'][:, :, 20:, :] == 0).all()
    s0, s1 = out['data_samples']
    assert s0.img_shape == (20, 24) and s1.img_shape == (16, 30)
    assert s0.scale_factor == (2.0, 2.0) and s0.batch_input_shape == (24, 32) and s0.pad_shape == (24, 32)
    assert s0.gt_instances.bboxes.tolist() == [[2., 4., 10., 12.]]
    assert s0.ignored_instances.bboxes.tolist() == [[0., 0., 4., 4.]]
    # The long-side limit wins: batch (10, 40) -> s = min(20/10, 30/40) = 0.75 -> (8, 30) (7.5 rounds to 8).
    assert BatchResize(scale=(20, 30)).get_target_size(10, 40) == (8, 30, 0.75)


def test_built_instances_accepted():
    pre = DetDataPreprocessor(batch_augments=[BatchFixedSizePad(size=(4, 4))])
    assert isinstance(pre.batch_augments[0], BatchFixedSizePad)

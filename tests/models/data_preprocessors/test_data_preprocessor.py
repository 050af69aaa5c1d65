"""DetDataPreprocessor: channel flip, normalisation, padding after normalisation, detection metainfo."""
import pytest
import torch
from mmengine.structures import InstanceData

import rcnn_plugins.models.data_preprocessors  # noqa: F401  (registers DetDataPreprocessor)
from rcnn_plugins.models.data_preprocessors import DetDataPreprocessor
from rcnn_plugins.registry import MODELS
from rcnn_plugins.structures import DetDataSample

MEAN = [123.675, 116.28, 103.53]  # RGB order, as in MMDetection configs
STD = [58.395, 57.12, 57.375]


def _batch():
    a = torch.zeros(3, 30, 45, dtype=torch.uint8)
    b = torch.full((3, 50, 20), 200, dtype=torch.uint8)
    a[:, 7, 11] = torch.tensor([10, 20, 30], dtype=torch.uint8)  # a BGR pixel: B=10, G=20, R=30
    samples = [DetDataSample(metainfo=dict(img_shape=(30, 45))), DetDataSample(metainfo=dict(img_shape=(50, 20)))]
    samples[0].gt_instances = InstanceData(bboxes=torch.tensor([[1., 2., 3., 4.]]), labels=torch.tensor([0]))
    return dict(inputs=[a, b], data_samples=samples)


def test_normalize_flip_pad_and_metainfo():
    pre = MODELS.build(dict(type='DetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                            pad_size_divisor=32, pad_value=7))
    out = pre(_batch(), training=True)
    x = out['inputs']
    assert x.dtype == torch.float32 and tuple(x.shape) == (2, 3, 64, 64)  # max (50, 45) rounded up to 32
    # the BGR pixel (10, 20, 30) becomes RGB (30, 20, 10), then (v - mean) / std
    expected = torch.tensor([(30 - MEAN[0]) / STD[0], (20 - MEAN[1]) / STD[1], (10 - MEAN[2]) / STD[2]])
    torch.testing.assert_close(x[0, :, 7, 11], expected)
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([-m / s for m, s in zip(MEAN, STD)]))
    torch.testing.assert_close(x[1, :, 49, 19], torch.tensor([(200 - m) / s for m, s in zip(MEAN, STD)]))
    # padding happens after normalisation: the padded area holds pad_value itself
    assert torch.all(x[0, :, 30:, :] == 7) and torch.all(x[0, :, :, 45:] == 7)
    assert torch.all(x[1, :, 50:, :] == 7) and torch.all(x[1, :, :, 20:] == 7)
    samples = out['data_samples']
    assert [s.batch_input_shape for s in samples] == [(64, 64), (64, 64)]
    assert [s.pad_shape for s in samples] == [(32, 64), (64, 32)]  # each image's own size rounded up to 32
    assert [s.img_shape for s in samples] == [(30, 45), (50, 20)]
    assert torch.equal(samples[0].gt_instances.bboxes, torch.tensor([[1., 2., 3., 4.]]))


def test_no_normalisation_no_flip_divisor_one():
    pre = DetDataPreprocessor()
    out = pre(_batch())
    x = out['inputs']
    assert tuple(x.shape) == (2, 3, 50, 45)
    assert x[0, :, 7, 11].tolist() == [10., 20., 30.]
    assert torch.all(x[0, :, 30:, :] == 0)
    assert [s.pad_shape for s in out['data_samples']] == [(30, 45), (50, 20)]
    assert out['data_samples'][0].batch_input_shape == (50, 45)


def test_rgb_to_bgr_and_single_value_mean():
    pre = DetDataPreprocessor(mean=[10], std=[2], rgb_to_bgr=True)
    x = pre(_batch())['inputs']
    assert x[0, :, 7, 11].tolist() == [(30 - 10) / 2, (20 - 10) / 2, (10 - 10) / 2]


def test_stacked_tensor_input_and_no_samples():
    pre = DetDataPreprocessor(pad_size_divisor=8)
    out = pre(dict(inputs=torch.ones(2, 3, 10, 17, dtype=torch.uint8), data_samples=None))
    assert tuple(out['inputs'].shape) == (2, 3, 16, 24) and out['data_samples'] is None
    samples = [DetDataSample(), DetDataSample()]
    out = pre(dict(inputs=torch.ones(2, 3, 10, 17, dtype=torch.uint8), data_samples=samples))
    assert [s.pad_shape for s in out['data_samples']] == [(16, 24), (16, 24)]


def test_boxtype2tensor_unwraps_box_objects():
    class Boxes:  # stands in for MMDetection's HorizontalBoxes: holds its (N, 4) tensor in .tensor
        def __init__(self, t):
            self.tensor = t

        def __len__(self):
            return len(self.tensor)

    data = _batch()
    data['data_samples'][0].gt_instances.bboxes = Boxes(torch.tensor([[5., 6., 7., 8.]]))
    out = DetDataPreprocessor()(data)
    assert torch.equal(out['data_samples'][0].gt_instances.bboxes, torch.tensor([[5., 6., 7., 8.]]))


def test_output_on_preprocessor_device():
    pre = DetDataPreprocessor(mean=MEAN, std=STD)
    out = pre(_batch())
    assert out['inputs'].device == pre.mean.device == torch.device('cpu')


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(NotImplementedError, match='pad_mask'):
        DetDataPreprocessor(pad_mask=True)
    with pytest.raises(NotImplementedError, match='pad_seg'):
        DetDataPreprocessor(pad_seg=True)
    with pytest.raises(KeyError, match='BatchSyncRandomResize.* is a model of MMDetection'):
        DetDataPreprocessor(batch_augments=[dict(type='BatchSyncRandomResize')])
    with pytest.raises(ValueError, match='bgr_to_rgb and rgb_to_bgr'):
        DetDataPreprocessor(bgr_to_rgb=True, rgb_to_bgr=True)
    with pytest.raises(ValueError, match='mean and std'):
        DetDataPreprocessor(mean=MEAN)
    with pytest.raises(AssertionError):  # what MMDetection (mmengine) raises for mean without std
        DetDataPreprocessor(mean=MEAN, std=None)
    with pytest.raises(ValueError, match='pad_size_divisor'):
        DetDataPreprocessor(pad_size_divisor=0)
    pre = DetDataPreprocessor()
    with pytest.raises(TypeError, match='inputs'):
        pre(dict(inputs='not images'))
    with pytest.raises(ValueError, match='data_samples'):
        pre(dict(inputs=[torch.zeros(3, 4, 4, dtype=torch.uint8)], data_samples=[DetDataSample()] * 2))

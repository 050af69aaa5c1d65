"""Bad reduction / reduction_override: MMDetection raises AssertionError, we raise an error that is
both an AssertionError and a ValueError; avg_factor with 'sum' is a ValueError in both."""
import pytest
import torch

from rcnn_plugins.registry import MODELS

REGRESSION = ['IoULoss', 'BoundedIoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss', 'L1Loss', 'SmoothL1Loss',
              'BalancedL1Loss']


@pytest.mark.parametrize('name', REGRESSION + ['FocalLoss', 'CrossEntropyLoss'])
@pytest.mark.parametrize('bad', [True, 'avg', ''])
def test_reduction_override_validated(name, bad):
    loss = MODELS.build(dict(type=name))
    pred = torch.rand(10, 4)
    # MMDetection's own test passes a tuple as target here: the check must come first.
    target = (torch.rand(10, 4),)
    with pytest.raises(AssertionError):
        loss(pred, target, None, reduction_override=bad)
    with pytest.raises(ValueError):
        loss(pred, target, None, reduction_override=bad)


@pytest.mark.parametrize('name', REGRESSION)
@pytest.mark.parametrize('shape', [(10, 4), (0, 4)])
def test_regression_losses_mmdet_contract(name, shape):
    loss = MODELS.build(dict(type=name))
    pred, target, weight = torch.rand(shape), torch.rand(shape), torch.rand(shape)
    for kwargs in (dict(), dict(weight=weight), dict(reduction_override='mean'), dict(avg_factor=10)):
        out = loss(pred, target, **kwargs)
        assert isinstance(out, torch.Tensor) and torch.isfinite(out).all()
    with pytest.raises(ValueError):
        loss(pred, target, avg_factor=10, reduction_override='sum')
    for override in (None, 'none', 'mean'):
        assert isinstance(loss(pred, target, avg_factor=10, reduction_override=override), torch.Tensor)


def test_bad_reduction_at_build():
    with pytest.raises(AssertionError):
        MODELS.build(dict(type='GIoULoss', reduction='avg'))

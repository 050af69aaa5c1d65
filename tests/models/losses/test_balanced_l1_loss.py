"""BalancedL1Loss against the Libra R-CNN paper's formula and its gradient, on hand values."""
import math

import pytest
import torch

from rcnn_plugins.models.losses import BalancedL1Loss

EPS = torch.finfo(torch.float32).eps


def paper_value(x, alpha=0.5, gamma=1.5, beta=1.0):
    b = math.exp(gamma / alpha) - 1
    x = abs(x)
    if x < beta:
        return alpha / b * (b * x + 1) * math.log(b * x / beta + 1) - alpha * x
    return gamma * x + gamma / b - alpha * beta


def test_hand_values_and_paper_gradient():
    diffs = [0.0, 0.1, 0.5, -0.5, 0.99, 1.0, 2.0, -3.0]
    pred = torch.tensor(diffs, dtype=torch.float64, requires_grad=True)
    loss = BalancedL1Loss(reduction='none')(pred, torch.zeros_like(pred))
    torch.testing.assert_close(loss, torch.tensor([paper_value(d) for d in diffs], dtype=torch.float64))
    loss.sum().backward()
    # Paper, eq. (7): d L / d x = alpha ln(b|x| + 1) inside beta, gamma outside (times sign).
    b = math.exp(3) - 1
    grad = [math.copysign(0.5 * math.log(b * abs(d) + 1) if abs(d) < 1 else 1.5, d) if d else 0.0 for d in diffs]
    torch.testing.assert_close(pred.grad, torch.tensor(grad, dtype=torch.float64))
    # The two pieces meet at beta (continuity the paper's constant C is chosen for).
    assert paper_value(1 - 1e-9) == pytest.approx(paper_value(1.0), abs=1e-6)


def test_weight_avg_factor_and_empty():
    pred = torch.tensor([[0.5, 0., 2., 0.]])
    target = torch.zeros(1, 4)
    w = torch.tensor([[1., 1., 2., 0.]])
    expected = (paper_value(0.5) + 2 * paper_value(2.0)) / (4 + EPS)
    torch.testing.assert_close(BalancedL1Loss()(pred, target, w, avg_factor=4), torch.tensor(expected))
    custom = BalancedL1Loss(alpha=1.0, gamma=2.0, beta=2.0, loss_weight=3.0, reduction='sum')
    torch.testing.assert_close(custom(pred, target), torch.tensor(
        3.0 * sum(paper_value(v, 1.0, 2.0, 2.0) for v in (0.5, 0., 2., 0.))))
    empty = BalancedL1Loss()(torch.zeros(0, 4, requires_grad=True), torch.zeros(0, 4))
    assert empty.item() == 0 and empty.requires_grad

"""CrossEntropyCustomLoss: the custom-classifier hooks (channels, activation, accuracy) by hand."""
import math

import pytest
import torch

from rcnn_plugins.models.losses import CrossEntropyCustomLoss, CrossEntropyLoss


def test_softmax_hooks_and_loss():
    loss = CrossEntropyCustomLoss(num_classes=3)
    assert loss.get_cls_channels(3) == 4 and loss.custom_cls_channels and loss.custom_activation
    logits = torch.tensor([[2., 1., 0., 0.], [0., 0., 3., 1.]])
    labels = torch.tensor([0, 3])
    torch.testing.assert_close(loss(logits, labels), CrossEntropyLoss()(logits, labels))
    torch.testing.assert_close(loss.get_activation(logits), logits.softmax(-1))
    # Accuracy over foreground samples only: sample 0 (label 0, argmax 0) -> 100 %.
    assert loss.get_accuracy(logits, labels)['acc_classes'].item() == pytest.approx(100.0)
    with pytest.raises(AssertionError):
        loss.get_cls_channels(5)


def test_sigmoid_background_score():
    loss = CrossEntropyCustomLoss(use_sigmoid=True, num_classes=2)
    assert loss.get_cls_channels(2) == 2
    logits = torch.tensor([[-3., -3.], [3., 3.]])
    scores = loss.get_activation(logits)
    # Background = 1 - sum of the class probabilities, clamped to [0, 1]: 1 - 2 sigmoid(-3); 0 (clamped).
    lo, hi = 1 / (1 + math.exp(3)), 1 / (1 + math.exp(-3))
    torch.testing.assert_close(scores, torch.tensor([[lo, lo, 1 - 2 * lo], [hi, hi, 0.0]]))
    assert scores.shape == (2, 3)


def test_num_classes_required():
    with pytest.raises(AssertionError):
        CrossEntropyCustomLoss()

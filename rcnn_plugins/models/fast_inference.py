"""``prepare_for_inference``: the inference fast path, applied to a built (and loaded) detector.

Two switches, both off the training path because they change a model in ways training must not see:

- ``fuse_conv_bn``: eval-mode BatchNorm folded into the convolution before it (see
  ``layers/fuse_conv_bn.py``); the BN layers become ``nn.Identity``, so ``state_dict`` keys change.
- ``channels_last``: the data preprocessor returns NHWC-strided batches and the 4-d weights are
  stored NHWC too, so every convolution runs its channels-last kernel without reordering.

Opt-in: ``compile`` (``torch.compile`` of backbone + neck with dynamic shapes).

Both switches change results only by float rounding (fused BN to ~1e-5 relative, channels-last to ~1e-6);
tests/models/test_fast_inference.py checks predictions against the plain path. ``tools/test.py
--fuse-conv-bn --channels-last`` applies them after the checkpoint is loaded
(``engine/hooks/fast_inference_hook.py``); ``init_detector(..., fuse_conv_bn=True, channels_last=True)`` does the same.
"""
import warnings
from typing import Union

import torch
from torch import nn

from .layers.fuse_conv_bn import fuse_conv_bn as _fuse_conv_bn


def prepare_for_inference(model: nn.Module, fuse_conv_bn: bool = True, channels_last: bool = True,
                          compile: Union[bool, dict] = False) -> nn.Module:
    """Put ``model`` in eval mode and apply the fast path in place; returns ``model``.

    ``compile``: also ``torch.compile`` the dense part (``extract_feat``: backbone + neck), with
    ``dynamic=True`` so that a new image size does not trigger a new compilation each batch (a
    dict: ``torch.compile`` keyword arguments, ``dynamic`` defaulting to True). Opt-in: the first
    batch pays the compilation (tens of seconds on a CPU, see docs/SPEED.md); the heads stay eager
    (data-dependent shapes in top-k / NMS / RoI sampling would break the graph anyway).
    """
    model.eval()
    if fuse_conv_bn:
        _fuse_conv_bn(model)
        model._register_state_dict_hook(_warn_fused_state_dict)
    if channels_last:
        preprocessor = getattr(model, 'data_preprocessor', None)
        if preprocessor is None or not hasattr(preprocessor, 'channels_last'):
            raise TypeError(f'prepare_for_inference(channels_last=True) needs a model whose data_preprocessor '
                            f'is a DetDataPreprocessor; got {type(preprocessor).__name__}')
        preprocessor.channels_last = True
        model.to(memory_format=torch.channels_last)
    if compile:
        options = dict(compile) if isinstance(compile, dict) else {}
        options.setdefault('dynamic', True)
        # An instance attribute shadows the method; parameters and state_dict keys stay as they are.
        model.extract_feat = torch.compile(model.extract_feat, **options)
    return model


def _warn_fused_state_dict(module, state_dict, prefix, local_metadata):
    """A fused model's ``state_dict`` lacks the BN keys: warn before it is saved as a checkpoint."""
    if not prefix:
        warnings.warn('state_dict of a model with BatchNorm folded into its convolutions (the inference fast '
                      'path): its keys differ from a training checkpoint\'s. Build it with exact=True '
                      '(init_detector / DetInferencer) to save or train it.', stacklevel=3)

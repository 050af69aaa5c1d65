"""``prepare_for_inference``: the inference fast path, applied to a built (and loaded) detector.

Two switches, both off the training path because they change a model in ways training must not see:

- ``fuse_conv_bn``: eval-mode BatchNorm folded into the convolution before it (see
  ``layers/fuse_conv_bn.py``); the BN layers become ``nn.Identity``, so ``state_dict`` keys change.
- ``channels_last``: the data preprocessor returns NHWC-strided batches and the 4-d weights are
  stored NHWC too, so every convolution runs its channels-last kernel without reordering.

Both change results only by float rounding (fused BN to ~1e-5 relative, channels-last to ~1e-6);
tests/test_fast_inference.py checks predictions against the plain path. ``tools/test.py
--fuse-conv-bn --channels-last`` applies them after the checkpoint is loaded
(``engine/hooks/fast_inference_hook.py``); ``init_detector(..., fuse_conv_bn=True, channels_last=True)`` does the same.
"""
import torch
from torch import nn

from .layers.fuse_conv_bn import fuse_conv_bn as _fuse_conv_bn


def prepare_for_inference(model: nn.Module, fuse_conv_bn: bool = True, channels_last: bool = True) -> nn.Module:
    """Put ``model`` in eval mode and apply the fast path in place; returns ``model``."""
    model.eval()
    if fuse_conv_bn:
        _fuse_conv_bn(model)
    if channels_last:
        preprocessor = getattr(model, 'data_preprocessor', None)
        if preprocessor is None or not hasattr(preprocessor, 'channels_last'):
            raise TypeError(f'prepare_for_inference(channels_last=True) needs a model whose data_preprocessor '
                            f'is a DetDataPreprocessor; got {type(preprocessor).__name__}')
        preprocessor.channels_last = True
        model.to(memory_format=torch.channels_last)
    return model

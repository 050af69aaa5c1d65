"""How a loaded detector runs inference: the fast path by default, ``exact`` to turn it off, ``amp``
for reduced precision.

The default is the fastest path whose predictions equal the plain model's to float rounding:

- on a CPU: BatchNorm folded into the convolutions and channels-last (NHWC) tensors, which
  oneDNN's convolutions prefer (~1e-5 relative on the features; see ``models/fast_inference.py``);
- on a GPU: BatchNorm folded (cuDNN picks its own layouts for fp32).

``exact=True`` runs the model as built (unfused BN, NCHW). ``amp=True`` adds autocast: bf16 on a
CPU with native bf16 (AVX-512 BF16 or AMX), always with channels-last there, fp16 on a GPU; a CPU
without native bf16 refuses it (emulated bf16 convolutions are hundreds of times slower). bf16
changes scores by ~1e-2 and is therefore never chosen without ``amp``.

The choice is logged once per model with its reason (``describe``), and kept on the model as
``model.inference_path`` (a dict) so the inference functions can enter the matching autocast.
"""
from contextlib import nullcontext
from typing import Optional

import torch
from mmengine.logging import print_log

from ..engine.optimizers import cpu_bf16_supported
from ..models.fast_inference import prepare_for_inference

NO_BF16 = ('--amp: no CUDA GPU, and this CPU has no native bf16 (AVX-512 BF16 or AMX; '
           'torch.ops.mkldnn._is_mkldnn_bf16_supported() is False). Emulated bf16 convolutions run '
           '~400x slower than float32: run without --amp (the default fp32 fast path is used).')


class AmpUnavailableError(RuntimeError):
    """``amp`` asked for on a CPU without native bf16."""


def choose_inference_path(device: str = 'cpu', exact: bool = False, amp: bool = False) -> dict:
    """-> dict(fuse_conv_bn, channels_last, autocast (None or 'bf16' / 'fp16'), reason).

    Raises :class:`AmpUnavailableError` for ``amp`` on a CPU without native bf16.
    """
    on_gpu = str(device).startswith('cuda')
    if amp:
        if on_gpu:
            return dict(fuse_conv_bn=not exact, channels_last=False, autocast='fp16',
                        reason='--amp on a GPU: fp16 autocast' + ('' if exact else ', BN folded'))
        if not cpu_bf16_supported():
            raise AmpUnavailableError(NO_BF16)
        return dict(fuse_conv_bn=not exact, channels_last=True, autocast='bf16',
                    reason='--amp on a CPU with native bf16: bf16 autocast + channels-last'
                           + ('' if exact else ' + BN folded') + ' (scores change by ~1e-2)')
    if exact:
        return dict(fuse_conv_bn=False, channels_last=False, autocast=None,
                    reason='--exact: the model as built (fp32, BN unfused, NCHW)')
    if on_gpu:
        return dict(fuse_conv_bn=True, channels_last=False, autocast=None,
                    reason='default on a GPU: BN folded into the convolutions (fp32; equal to the plain model '
                           'to float rounding; --exact turns it off)')
    return dict(fuse_conv_bn=True, channels_last=True, autocast=None,
                reason='default on a CPU: BN folded into the convolutions + channels-last (fp32; equal to the '
                       'plain model to float rounding; --exact turns it off, --amp adds bf16 where native)')


def apply_inference_path(model: torch.nn.Module, path: dict, log: bool = True) -> torch.nn.Module:
    """Apply ``path`` (from :func:`choose_inference_path`) to a loaded eval-mode ``model`` in place."""
    if path['fuse_conv_bn'] or path['channels_last']:
        prepare_for_inference(model, fuse_conv_bn=path['fuse_conv_bn'], channels_last=path['channels_last'])
    model.inference_path = dict(path)
    if log:
        print_log(f'inference path: {path["reason"]}', logger='current')
    return model


def inference_autocast(model: torch.nn.Module, device: Optional[str] = None):
    """The autocast context the model's ``inference_path`` asks for (a no-op context without one)."""
    kind = (getattr(model, 'inference_path', None) or {}).get('autocast')
    if kind is None:
        return nullcontext()
    device_type = 'cuda' if str(device or next(model.parameters()).device).startswith('cuda') else 'cpu'
    return torch.autocast(device_type, dtype=torch.bfloat16 if kind == 'bf16' else torch.float16)

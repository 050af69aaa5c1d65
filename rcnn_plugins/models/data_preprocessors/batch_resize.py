"""``BatchResize``: MMDetection's batch augment resizing the whole padded batch (CrowdHuman configs).

The batch ``(H, W)`` is scaled by ``s = min(scale) / min(H, W)``, or ``max(scale) / max(H, W)`` when
that would make the long side exceed ``max(scale)``; new size ``round(H * s), round(W * s)``
(bilinear, ``align_corners=False``), then padded bottom / right to ``pad_size_divisor`` with
``pad_value``. Every sample's boxes (gt and ignored) are multiplied by ``s``; ``img_shape`` becomes
``int(s * h), int(s * w)``; ``scale_factor`` is multiplied by ``s`` (MMDetection replaces it by
``(s, s)``; the two agree when the pipeline did not resize, as in its configs).
"""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class BatchResize(nn.Module):
    """Args: ``scale`` (two edge lengths: short-side target and long-side limit),
    ``pad_size_divisor``, ``pad_value``."""

    def __init__(self, scale: tuple, pad_size_divisor: int = 1, pad_value: float = 0) -> None:
        super().__init__()
        if len(scale) != 2 or min(scale) <= 0:
            raise ValueError(f'BatchResize: scale must be two positive edge lengths, got {scale!r}')
        self.min_size, self.max_size = min(scale), max(scale)
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = pad_value

    def get_target_size(self, height: int, width: int) -> Tuple[int, int, float]:
        """(H, W) -> (new H, new W, scale)."""
        scale = self.min_size / min(height, width)
        if scale * max(height, width) > self.max_size:
            scale = self.max_size / max(height, width)
        return int(round(height * scale)), int(round(width * scale)), scale

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None) -> Tuple[Tensor, Optional[List]]:
        height, width, scale = self.get_target_size(*inputs.shape[-2:])
        inputs = F.interpolate(inputs, size=(height, width), mode='bilinear', align_corners=False)
        d = self.pad_size_divisor
        padded = inputs.new_full((*inputs.shape[:2], (height + d - 1) // d * d, (width + d - 1) // d * d),
                                 float(self.pad_value))
        padded[..., :height, :width] = inputs
        shape = tuple(padded.shape[-2:])
        for sample in data_samples or ():
            old = sample.metainfo.get('scale_factor', (1.0, 1.0))
            sample.set_metainfo({'img_shape': tuple(int(scale * v) for v in sample.img_shape),
                                 'batch_input_shape': shape, 'pad_shape': shape,
                                 'scale_factor': (old[0] * scale, old[1] * scale)})
            for field in ('gt_instances', 'ignored_instances'):
                if field in sample and 'bboxes' in sample.get(field):
                    sample.get(field).bboxes = sample.get(field).bboxes * scale
        return padded, data_samples

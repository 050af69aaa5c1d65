"""``PretrainedFCBBoxHead``: a Shared2FCBBoxHead whose fcs start from an ImageNet classifier's fc layers.

The paper's Faster R-CNN (like Fast R-CNN) initialises its two 4096-d RoI fcs from VGG-16's fc6 and
fc7, torchvision's ``classifier.0`` / ``classifier.3``. The copy is exact because both flatten the
same way: torchvision's VGG flattens its (B, 512, 7, 7) pooled map channel-major
(``torch.flatten(x, 1)``: index ``c * 49 + y * 7 + x``), and ``ConvFCBBoxHead`` flattens the (R, 512,
7, 7) RoI features with the same ``flatten(1)``. The classifier and regressor stay freshly
initialised (Normal, std 0.01 / 0.001).
"""
from typing import Sequence

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from ....registry import MODELS
from ...pretrained import check_checkpoint_cached
from .convfc_bbox_head import Shared2FCBBoxHead


@MODELS.register_module()
class PretrainedFCBBoxHead(Shared2FCBBoxHead):
    """Two shared fcs loaded from a classifier checkpoint by ``init_weights``, with optional dropout.

    Args:
        fc_checkpoint: checkpoint holding the fc weights: ``'torchvision://vgg16'`` (resolved in torch's
            hub cache, never downloaded), a local path, or anything mmengine's ``CheckpointLoader``
            reads; a checkpoint with a ``state_dict`` entry is read from it.
        fc_keys: prefixes of the checkpoint's two fc layers (``{key}.weight`` (out, in), ``{key}.bias``),
            copied into ``shared_fcs.0`` and ``shared_fcs.1``.
        dropout: dropout probability after each fc's ReLU while training (VGG's own 0.5, used by
            Fast / Faster R-CNN); 0 disables it. It is ``ConvFCBBoxHead``'s ``dropout`` option: this
            head adds only the initialisation step, its forward is its parent's.
        **kwargs: ``Shared2FCBBoxHead`` arguments; ``in_channels * roi_feat_size**2`` and
            ``fc_out_channels`` must match the checkpoint's fcs (512 * 7 * 7 = 25088 and 4096 for VGG).
    """

    def __init__(self, fc_checkpoint: str, fc_keys: Sequence[str] = ('classifier.0', 'classifier.3'),
                 dropout: float = 0.0, **kwargs) -> None:
        super().__init__(dropout=dropout, **kwargs)
        if len(fc_keys) != self.num_shared_fcs:
            raise ValueError(f'PretrainedFCBBoxHead: fc_keys {tuple(fc_keys)} must name one checkpoint layer per '
                             f'shared fc ({self.num_shared_fcs})')
        self.fc_checkpoint = fc_checkpoint
        self.fc_keys = tuple(fc_keys)

    def init_weights(self) -> None:
        """Default init (Xavier fcs, Normal predictors), then the fcs' weights from ``fc_checkpoint``."""
        check_checkpoint_cached(self.fc_checkpoint)
        super().init_weights()
        ckpt = CheckpointLoader.load_checkpoint(self.fc_checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
        for fc, key in zip(self.shared_fcs, self.fc_keys):
            for name, param in (('weight', fc.weight), ('bias', fc.bias)):
                src = state.get(f'{key}.{name}')
                if src is None:
                    raise KeyError(f'PretrainedFCBBoxHead: {self.fc_checkpoint} has no {key}.{name}; fc_keys '
                                   f'{self.fc_keys} must name its fc layers (torchvision VGG: classifier.0, '
                                   'classifier.3)')
                if tuple(src.shape) != tuple(param.shape):
                    raise ValueError(
                        f'PretrainedFCBBoxHead: {self.fc_checkpoint} {key}.{name} has shape {tuple(src.shape)} '
                        f'but the head needs {tuple(param.shape)}: in_channels * roi_feat_size**2 '
                        f'({self.in_channels} * {self.roi_feat_area}) and fc_out_channels '
                        f'({self.fc_out_channels}) must match the checkpoint (VGG: 512 * 49, 4096)')
                with torch.no_grad():
                    param.copy_(src)

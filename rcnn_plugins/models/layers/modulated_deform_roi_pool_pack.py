"""``ModulatedDeformRoIPoolPack`` (mmcv's name and state_dict layout; Deformable ConvNets v2):
:class:`DeformRoIPoolPack` whose output is multiplied per bin by a sigmoid mask predicted by
``mask_fc`` (Linear-ReLU-Linear-Sigmoid, last Linear zero-initialised: a new layer starts at
mask 0.5) from the same plain pooling pass as the offsets."""
from typing import Tuple, Union

from torch import Tensor, nn

from rcnn_plugins.registry import MODELS
from .deform_roi_pool import deform_roi_pool
from .deform_roi_pool_pack import DeformRoIPoolPack, offset_fc


@MODELS.register_module()
class ModulatedDeformRoIPoolPack(DeformRoIPoolPack):
    """Modulated deformable RoI pooling: arguments as :class:`DeformRoIPoolPack`.

    ``forward(input (B, C, H, W), rois (R, 5)) -> (R, C, oh, ow)``.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], output_channels: int = 256,
                 deform_fc_channels: int = 1024, spatial_scale: float = 1.0, sampling_ratio: int = 0,
                 gamma: float = 0.1) -> None:
        super().__init__(output_size, output_channels, deform_fc_channels, spatial_scale, sampling_ratio, gamma)
        oh, ow = self.output_size
        fcs = list(offset_fc(oh * ow * output_channels, deform_fc_channels, oh * ow, 2))
        self.mask_fc = nn.Sequential(*fcs, nn.Sigmoid())

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        offset, plain = self.predict_offset(input, rois)
        mask = self.mask_fc(plain.flatten(1)).view(rois.size(0), 1, *self.output_size)
        pooled = deform_roi_pool(input, rois, offset, self.output_size, self.spatial_scale, self.sampling_ratio,
                                 self.gamma)
        return pooled * mask

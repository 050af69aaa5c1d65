"""``DeformRoIPoolPack`` (mmcv's name and state_dict layout): the offsets of
:class:`DeformRoIPool` predicted from a first, plain pooling pass by ``offset_fc``
(Linear-ReLU-Linear-ReLU-Linear; the last layer zero-initialised, so a new layer starts as
RoIAlign with ``aligned=True``)."""
from typing import Tuple, Union

from torch import Tensor, nn

from rcnn_plugins.registry import MODELS
from .deform_roi_pool import DeformRoIPool, deform_roi_pool


def offset_fc(in_features: int, hidden: int, out_features: int, layers: int) -> nn.Sequential:
    """mmcv's fc stacks: ``layers`` Linear layers with ReLU between, last one zero-initialised."""
    mods = []
    for i in range(layers):
        mods.append(nn.Linear(in_features if i == 0 else hidden, out_features if i == layers - 1 else hidden))
        if i < layers - 1:
            mods.append(nn.ReLU(inplace=True))
    mods[-1].weight.data.zero_()
    mods[-1].bias.data.zero_()
    return nn.Sequential(*mods)


@MODELS.register_module()
class DeformRoIPoolPack(DeformRoIPool):
    """Deformable RoI pooling with learnt offsets.

    Args:
        output_size, spatial_scale, sampling_ratio, gamma: as :class:`DeformRoIPool`.
        output_channels: channels C of the features (the fcs read ``C * oh * ow`` values per RoI).
        deform_fc_channels: hidden width of the offset fcs.

    ``forward(input (B, C, H, W), rois (R, 5)) -> (R, C, oh, ow)``.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], output_channels: int = 256,
                 deform_fc_channels: int = 1024, spatial_scale: float = 1.0, sampling_ratio: int = 0,
                 gamma: float = 0.1) -> None:
        super().__init__(output_size, spatial_scale, sampling_ratio, gamma)
        self.output_channels = output_channels
        self.deform_fc_channels = deform_fc_channels
        oh, ow = self.output_size
        self.offset_fc = offset_fc(oh * ow * output_channels, deform_fc_channels, oh * ow * 2, 3)

    def predict_offset(self, input: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, 2, oh, ow) offsets and the (R, C, oh, ow) plain pooling (no offsets) they come from."""
        if input.size(1) != self.output_channels:
            raise ValueError(f'{type(self).__name__}: features have {input.size(1)} channels, '
                             f'output_channels={self.output_channels}; set output_channels to the neck width')
        plain = deform_roi_pool(input, rois, None, self.output_size, self.spatial_scale, self.sampling_ratio,
                                self.gamma)
        return self.offset_fc(plain.flatten(1)).view(rois.size(0), 2, *self.output_size), plain

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        offset, _ = self.predict_offset(input, rois)
        return deform_roi_pool(input, rois, offset, self.output_size, self.spatial_scale, self.sampling_ratio,
                               self.gamma)

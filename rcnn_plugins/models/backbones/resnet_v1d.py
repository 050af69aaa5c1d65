"""ResNetV1d ("Bag of Tricks", He et al., 2019), registered as ``'ResNetV1d'``: ResNet with the deep
stem (three 3x3 convs, ``stem.*``) and average-pool shortcut downsampling (``downsample.0`` pool,
``.1`` conv, ``.2`` norm). MMDetection's keys."""
from rcnn_plugins.registry import MODELS
from .resnet import ResNet


@MODELS.register_module()
class ResNetV1d(ResNet):
    """``ResNet(deep_stem=True, avg_down=True, **kwargs)``; every other argument is ResNet's.

    ``forward(x (B, 3, H, W))`` returns ResNet's feature tuple.
    """

    def __init__(self, **kwargs):
        super().__init__(deep_stem=True, avg_down=True, **kwargs)

"""``RandomResize``: mmcv's transform (a scale drawn from a range or ``ratio_range`` per image,
multi-scale training), registered in the rcnn_plugins scope so that its inner ``resize_type``
resolves to our ``Resize`` whatever the default scope (see ``random_choice_resize.py`` for why).
"""
from mmcv.transforms import RandomResize as MMCVRandomResize

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomResize(MMCVRandomResize):
    """Args (as mmcv): ``scale`` (a ``(w, h)`` or two of them: a range), ``ratio_range``,
    ``resize_type`` ('Resize'), ``**resize_kwargs`` for the resize."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resize = TRANSFORMS.build({'scale': 0, **self.resize_cfg})

"""``RandomChoiceResize``: mmcv's transform (one of ``scales`` per image, multi-scale training),
registered in the rcnn_plugins scope so that its inner ``resize_type`` resolves here.

mmcv builds the inner resize from its own registry, which finds *our* ``Resize`` (float32 boxes,
clipping, proposals) only when ``default_scope='rcnn_plugins'`` is active; otherwise mmcv's Resize
would silently do the boxes differently. This class rebuilds it from our registry, so the
MMDetection config line ``dict(type='RandomChoiceResize', scales=[...], keep_ratio=True)`` uses
our Resize whatever the scope.
"""
from mmcv.transforms import RandomChoiceResize as MMCVRandomChoiceResize

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomChoiceResize(MMCVRandomChoiceResize):
    """Args (as mmcv): ``scales`` (list of ``(w, h)`` or ints), ``resize_type`` ('Resize'),
    ``**resize_kwargs`` for the resize (``keep_ratio``, ``clip_object_border``, ``backend``, ...)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resize = TRANSFORMS.build({'scale': 0, **self.resize_cfg})

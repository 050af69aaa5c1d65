"""``TestTimeAug``: mmcv's transform (every combination of the listed transforms, one view each:
``transforms=[[flip, no flip], [scale 1, scale 2], [pack]]`` gives 4 views), registered in the
rcnn_plugins scope so that the listed transforms are built from *our* registry (our
``RandomFlip``, ``Resize``, ``PackDetInputs``) whatever the default scope; mmcv's builds them from
its own, which finds them only under ``default_scope='rcnn_plugins'``.

Output: ``dict(inputs=[view...], data_samples=[view...])``, what ``DetTTAModel`` consumes.
"""
import copy

from mmcv.transforms import TestTimeAug as MMCVTestTimeAug

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class TestTimeAug(MMCVTestTimeAug):
    """Args (as mmcv): ``transforms``, a list of lists of transform configs (or callables)."""

    def __init__(self, transforms: list) -> None:
        built = [[TRANSFORMS.build(t) if isinstance(t, dict) else t for t in group]
                 for group in copy.deepcopy(transforms)]
        super().__init__(built)

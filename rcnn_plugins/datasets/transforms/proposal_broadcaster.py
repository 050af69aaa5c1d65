"""``ProposalBroadcaster``: MMDetection 3.x's wrapper name, so its Fast R-CNN configs run unchanged.

MMDetection's own ``Resize`` / ``RandomFlip`` transform only ``gt_bboxes``; its Fast R-CNN configs
wrap them in ``ProposalBroadcaster`` to apply them to the proposals too, with the same random
choices. Ours transform ``proposals`` themselves, so here the wrapper only runs its transforms in
order.
"""
from typing import List, Optional, Union

from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class ProposalBroadcaster(BaseTransform):
    """Run ``transforms`` (which handle ``proposals`` like ``gt_bboxes``) in sequence.

    Args:
        transforms: transform configs or callables, e.g. ``[dict(type='Resize', ...), dict(type='RandomFlip', ...)]``.
    """

    def __init__(self, transforms: List[Union[dict, callable]]) -> None:
        self.transforms = Compose(transforms)

    def transform(self, results: dict) -> Optional[dict]:
        return self.transforms(results)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(transforms={self.transforms})'

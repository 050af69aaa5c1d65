"""``TridentFasterRCNN``: Faster R-CNN on a trident backbone (TridentNet). The backbone returns the
features of its ``num_branch`` branches stacked along the batch; the detector repeats the data
samples ``num_branch`` times (branch-major, matching the features) for the RPN and RoI heads, whose
``TridentRoIHead`` merges the branches' detections per image. At test time with
``test_branch_idx >= 0`` one branch runs and nothing is repeated. MMDetection's name and arguments."""
from typing import List, Optional

from ...registry import MODELS
from ...structures import DetDataSample
from .faster_rcnn import FasterRCNN


@MODELS.register_module()
class TridentFasterRCNN(FasterRCNN):
    """Faster R-CNN whose backbone and RoI head agree on ``num_branch`` and ``test_branch_idx``.

    Args: those of ``FasterRCNN``; the backbone (``TridentResNet``) and the roi_head (``TridentRoIHead``)
    carry ``num_branch`` and ``test_branch_idx``.
    """

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict, train_cfg: Optional[dict],
                 test_cfg: Optional[dict], neck: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head, roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone_cfg, head_cfg = [(getattr(m, 'num_branch', None), getattr(m, 'test_branch_idx', None))
                                  for m in (self.backbone, self.roi_head)]
        if backbone_cfg != head_cfg or backbone_cfg[0] is None:
            raise ValueError('TridentFasterRCNN: backbone and roi_head must have the same num_branch and '
                             f'test_branch_idx, got backbone {backbone_cfg} and roi_head {head_cfg} '
                             '(a trident backbone such as TridentResNet and a TridentRoIHead)')
        self.num_branch = self.backbone.num_branch
        self.test_branch_idx = self.backbone.test_branch_idx

    def head_samples(self, batch_data_samples: List[DetDataSample]) -> List[DetDataSample]:
        """The samples repeated once per running branch, branch-major (as the backbone stacks features)."""
        branches = self.num_branch if self.training or self.test_branch_idx == -1 else 1
        return list(batch_data_samples) * branches

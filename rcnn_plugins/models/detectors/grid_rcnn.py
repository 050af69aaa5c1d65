"""``GridRCNN``: Grid R-CNN (Lu et al., CVPR 2019); a ``TwoStageDetector`` whose RoI head is a
``GridRoIHead`` (boxes located by grid-point heatmaps instead of regressed deltas)."""
from ...registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class GridRCNN(TwoStageDetector):
    """Grid R-CNN: ``TwoStageDetector`` with an RPN head and a GridRoIHead (see their args)."""

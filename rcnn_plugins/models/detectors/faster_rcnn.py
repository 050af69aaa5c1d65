"""``FasterRCNN``: the two-stage detector of Ren et al. (2015); a ``TwoStageDetector`` as is."""
from ...registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class FasterRCNN(TwoStageDetector):
    """Faster R-CNN: ``TwoStageDetector`` with an RPN head and a StandardRoIHead (see its args)."""

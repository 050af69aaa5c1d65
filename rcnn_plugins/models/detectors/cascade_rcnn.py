"""``CascadeRCNN``: the detector of Cai & Vasconcelos (2018); a ``TwoStageDetector`` whose RoI head is
a ``CascadeRoIHead`` (``train_cfg.rcnn`` is then a list, one dict per stage)."""
from ...registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class CascadeRCNN(TwoStageDetector):
    """Cascade R-CNN: ``TwoStageDetector`` with an RPN head and a CascadeRoIHead (see their args)."""

"""Per-image, tensor-only post-processing shared by eager ``predict`` and exported graphs.

``rpn_proposals`` (RPN proposal selection) and ``rcnn_detections`` (box-head decoding, score
threshold, class-wise NMS) take one image's tensors and return tensors; they take no Python
branch on a data-dependent size, so ``torch.onnx.export`` / ``torch.export`` record them once for
every input, and the eager heads call the very same functions (as torchvision's
``filter_proposals`` serves eager and traced runs).
"""
from .detections import rcnn_detections
from .graph import in_graph_capture, topk_at_most
from .proposals import rpn_level_maps, rpn_proposals

__all__ = ['in_graph_capture', 'topk_at_most', 'rpn_level_maps', 'rpn_proposals', 'rcnn_detections']

"""High-level Python API: build a detector from a config and run it on images, folders and videos."""
from .det_inferencer import DetInferencer
from .inference import inference_detector, init_detector

__all__ = ['init_detector', 'inference_detector', 'DetInferencer']

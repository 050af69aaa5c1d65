"""Evaluation metrics (registered in ``METRICS``): COCO, PASCAL VOC and CrowdHuman detection metrics."""
from .coco_metric import CocoMetric
from .crowdhuman_metric import CrowdHumanMetric
from .voc_metric import VOCMetric

__all__ = ['CocoMetric', 'CrowdHumanMetric', 'VOCMetric']

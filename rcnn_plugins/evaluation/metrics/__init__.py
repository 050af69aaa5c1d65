"""Evaluation metrics (registered in ``METRICS``): COCO, PASCAL VOC, CrowdHuman and Open Images detection metrics."""
from .coco_metric import CocoMetric
from .crowdhuman_metric import CrowdHumanMetric
from .openimages_metric import OpenImagesMetric
from .voc_metric import VOCMetric

__all__ = ['CocoMetric', 'CrowdHumanMetric', 'OpenImagesMetric', 'VOCMetric']

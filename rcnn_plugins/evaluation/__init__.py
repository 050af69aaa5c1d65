"""Evaluation: metrics registered in ``METRICS`` and the numpy functions behind them."""
from . import functional, metrics  # noqa: F401  (importing registers the metrics)
from .metrics import CocoMetric, VOCMetric

__all__ = ['CocoMetric', 'VOCMetric']

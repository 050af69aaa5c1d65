"""Necks: modules that mix a backbone's multi-scale feature maps (e.g. a feature pyramid)."""
from .fpn import FPN

__all__ = ['FPN']

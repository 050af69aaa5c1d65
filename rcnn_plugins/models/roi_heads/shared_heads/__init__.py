"""Shared RoI heads: layers every pooled RoI feature goes through before the box head."""
from .res_layer import ResLayer

__all__ = ['ResLayer']

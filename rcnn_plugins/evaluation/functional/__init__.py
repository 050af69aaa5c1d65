"""Plain numpy evaluation functions (VOC mean AP, proposal recall) and a text-table helper."""
from .bbox_overlaps import bbox_overlaps
from .mean_ap import average_precision, bbox_overlaps_np, eval_map, tpfp_image
from .recall import eval_recalls
from .table import format_table
from .utils import to_numpy

__all__ = ['average_precision', 'bbox_overlaps', 'bbox_overlaps_np', 'eval_map', 'tpfp_image', 'eval_recalls',
           'format_table', 'to_numpy']

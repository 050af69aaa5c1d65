"""FLOPs and parameters of a detector's inference pass, next to torchvision's Faster R-CNN.

Counting is mmengine's (``mmengine.analysis.FlopAnalyzer``, fvcore's counter): it traces one
forward pass and counts one "flop" per multiply-add of convolutions, linear layers and matrix
products; element-wise ops, NMS and RoIAlign are not counted (they are a few percent). The second
stage's cost grows with the number of proposals it classifies, which depends on the weights (NMS
keeps fewer boxes of an untrained RPN), so the table also gives the RoIs counted and the head's
cost per RoI; compare heads at the same number of RoIs.
"""
import copy
from typing import Dict, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config

from ..config_utils import enter_default_scope
from ..evaluation.functional import format_table
from ..registry import MODELS

# Our component names, and where torchvision's fasterrcnn_resnet50_fpn keeps the same part.
PARTS = ('backbone', 'neck', 'rpn_head', 'roi_head')
TORCHVISION_PARTS = dict(backbone='backbone.body', neck='backbone.fpn', rpn_head='rpn', roi_head='roi_heads')


def _count(model: torch.nn.Module, inputs: tuple, roi_module: torch.nn.Module, names: Dict[str, str]) -> dict:
    """Trace ``model(*inputs)``; FLOPs and parameters per part, and the RoIs ``roi_module`` pooled."""
    pooled = []
    handle = roi_module.register_forward_hook(lambda m, args, out: pooled.append(int(out.shape[0])))
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, inputs)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            by_module = analyzer.by_module()
    finally:
        handle.remove()
    params = parameter_count(model)
    result = dict(flops=by_module[''], params=params[''], num_rois=pooled[-1] if pooled else 0)
    for part, name in names.items():
        result[f'{part}_flops'] = by_module.get(name, 0)
        result[f'{part}_params'] = params.get(name, 0)
    return result


def build_random_detector(cfg: Config) -> torch.nn.Module:
    """The config's detector with random weights (no pretrained backbone to load), in eval mode."""
    enter_default_scope(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('backbone') is not None:
        model_cfg.backbone.pop('init_cfg', None)  # counting needs no weights: no download
    return MODELS.build(model_cfg).eval()


def detector_flops(model: torch.nn.Module, shape: Tuple[int, int]) -> dict:
    """Counts for our two-stage detector on one ``(H, W)`` image (``model(x)``, tensor mode).

    Returns ``dict(flops, params, num_rois, backbone_flops, backbone_params, ...)`` for each of
    ``PARTS`` the model has (a detector without a neck reports 0 for it).
    """
    model = model.eval()
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    roi_module = model.roi_head.bbox_roi_extractor
    return _count(model, (x,), roi_module, {part: part for part in PARTS})


def torchvision_flops(shape: Tuple[int, int]) -> dict:
    """Counts for torchvision's ``fasterrcnn_resnet50_fpn`` (random weights) on one ``(H, W)`` image.

    Its transform is set to keep the image at ``(H, W)`` (``min_size``/``max_size`` = the sides), so
    both models see the same pixels.
    """
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    torch.manual_seed(0)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=min(shape),
                                    max_size=max(shape)).eval()
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(0))
    return _count(model, ([x],), model.roi_heads.box_roi_pool, TORCHVISION_PARTS)


def complexity_table(columns: Dict[str, dict]) -> str:
    """A text table: one column per model (``{name: counts}``), GFLOPs and parameters per part."""
    def g(v):
        return f'{v / 1e9:.2f}'

    def m(v):
        return f'{v / 1e6:.2f}'

    rows = []
    for part in PARTS:
        rows.append([f'{part} GFLOPs'] + [g(c[f'{part}_flops']) for c in columns.values()])
    rows.append(['RoIs in the second stage'] + [str(c['num_rois']) for c in columns.values()])
    rows.append(['roi_head MFLOPs per RoI'] + [f'{c["roi_head_flops"] / max(c["num_rois"], 1) / 1e6:.2f}'
                                              for c in columns.values()])
    rows.append(['total GFLOPs'] + [g(c['flops']) for c in columns.values()])
    rows.append(['total GFLOPs at 1000 RoIs'] + [
        g(c['flops'] - c['roi_head_flops'] + 1000 * c['roi_head_flops'] / max(c['num_rois'], 1))
        for c in columns.values()])
    for part in PARTS:
        rows.append([f'{part} params (M)'] + [m(c[f'{part}_params']) for c in columns.values()])
    rows.append(['total params (M)'] + [m(c['params']) for c in columns.values()])
    return format_table([''] + list(columns), rows)

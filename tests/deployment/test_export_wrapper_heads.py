"""The export wrapper records StandardRoIHead's predict path; RoI heads that predict otherwise are
refused with one error instead of exporting a different model."""
import pytest
from torch import nn

from rcnn_plugins.deployment.export_wrapper import DetectorExportWrapper
from rcnn_plugins.models.roi_heads import CascadeRoIHead, GridRoIHead, PISARoIHead, StandardRoIHead

EXTRACTOR = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                 out_channels=4, featmap_strides=[4])
FC = dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8, num_classes=2)


def _detector(roi_head):
    det = nn.Module()
    det.rpn_head = nn.Identity()
    det.roi_head = roi_head
    return det


def test_standard_style_heads_are_accepted():
    DetectorExportWrapper(_detector(StandardRoIHead(EXTRACTOR, FC)))
    DetectorExportWrapper(_detector(PISARoIHead(EXTRACTOR, FC)))  # PISA changes training only


@pytest.mark.parametrize('make,reason', [
    (lambda: CascadeRoIHead(num_stages=1, stage_loss_weights=[1], bbox_roi_extractor=EXTRACTOR, bbox_head=FC),
     'predict path differs'),
    (lambda: GridRoIHead(grid_roi_extractor=None, bbox_roi_extractor=EXTRACTOR, bbox_head=dict(FC, with_reg=False),
                         grid_head=dict(type='GridHead', in_channels=4, point_feat_channels=4, num_convs=1,
                                        norm_cfg=None)),
     'predict path differs'),
    (lambda: StandardRoIHead(EXTRACTOR, dict(type='SABLHead', num_classes=2, cls_in_channels=4, reg_in_channels=4,
                                             cls_out_channels=8, reg_offset_out_channels=4, reg_cls_out_channels=4)),
     'SABL'),
])
def test_other_heads_are_refused_by_name(make, reason):
    with pytest.raises(TypeError, match=reason):
        DetectorExportWrapper(_detector(make()))


def test_cascade_rpn_is_refused_by_name():
    from rcnn_plugins.models.dense_heads import CascadeRPNHead
    stage = dict(type='StageCascadeRPNHead', in_channels=4, feat_channels=4, adapt_cfg=dict(type='offset'),
                 anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[1.0], strides=[4]))
    det = _detector(StandardRoIHead(EXTRACTOR, FC))
    det.rpn_head = CascadeRPNHead(num_classes=1, num_stages=1, stages=[stage], test_cfg={})
    with pytest.raises(TypeError, match='CascadeRPNHead'):
        DetectorExportWrapper(det)

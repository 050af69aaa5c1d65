# Faster R-CNN R50-FPN with modulated deformable convs (DCNv2) in stages c3-c5 (MMDetection's config).
_base_ = '../faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
